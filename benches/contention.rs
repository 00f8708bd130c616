//! Many tasks, one cached JWT: 1, 2, 4 and 8 tasks on a multi-thread runtime send the same
//! mandatory call (its token cached) through `AiutaAuthMiddleware`, without the network.
//!
//! Criterion times a round in which every task sends one request. The summary then runs
//! interleaved rounds of the middleware and of the header set by hand, and reports per-task and
//! total throughput: the middleware's per-task throughput must not collapse as tasks are added
//! (on 2 cores it halves from 2 to 4 tasks for anyone; its ratio to "by hand" should hold).
//!
//! `cargo bench --bench contention` (add `-- --quick` for a first look).

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Path, chain, median};
use criterion::{BenchmarkId, Criterion, Throughput};
use reqwest::Url;
use reqwest_middleware::ClientWithMiddleware;

const TASKS: [usize; 4] = [1, 2, 4, 8];
const PATH: Path = Path::JwtMandatory;

/// `tasks` tasks each send `per_task` requests at once; the time until the last one is done.
async fn round(client: &ClientWithMiddleware, url: &Url, tasks: usize, per_task: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let response = PATH.request(&client, &url).send().await.unwrap();
                    std::hint::black_box(response);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    start.elapsed()
}

fn main() {
    let quick = common::quick();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // As many workers as cores: more threads than cores would only time-share.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let workers = runtime.metrics().num_workers();
    let token = common::jwt(0);
    let url = PATH.url("https://api.aiuta.com");
    let client = reqwest::Client::new();
    let middleware = chain(client.clone(), PATH.middleware(None, &token), Some(Answer));
    let by_hand = chain(client, PATH.by_hand(&token), Some(Answer));
    runtime.block_on(round(&middleware, &url, 1, 1)); // fills the cache

    let mut group = criterion.benchmark_group("contention/jwt_mandatory_cached");
    for tasks in TASKS {
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_with_input(BenchmarkId::new("tasks", tasks), &tasks, |b, &tasks| {
            b.to_async(&runtime)
                .iter_custom(|iters| round(&middleware, &url, tasks, iters));
        });
    }
    group.finish();
    criterion.final_summary();
    if common::listing_or_testing() {
        return;
    }

    let (rounds, per_task) = if quick { (5, 5_000) } else { (15, 20_000) };
    println!();
    println!(
        "One cached key, {workers} worker threads ({rounds} interleaved rounds, {per_task} \
         requests per task)"
    );
    println!(
        "{:>5} {:>16} {:>16} {:>14} {:>16} {:>9}",
        "tasks", "per task (mw)", "total (mw)", "total / 1 task", "per task (hand)", "mw/hand"
    );
    let mut single = None;
    for tasks in TASKS {
        let (mut mw, mut hand, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        runtime.block_on(async {
            for r in 0..rounds {
                let rate = |elapsed: Duration| per_task as f64 / elapsed.as_secs_f64();
                let (m, h) = if r % 2 == 0 {
                    let m = rate(round(&middleware, &url, tasks, per_task).await);
                    (m, rate(round(&by_hand, &url, tasks, per_task).await))
                } else {
                    let h = rate(round(&by_hand, &url, tasks, per_task).await);
                    (rate(round(&middleware, &url, tasks, per_task).await), h)
                };
                mw.push(m);
                hand.push(h);
                ratio.push(m / h);
            }
        });
        let per_task_mw = median(&mut mw);
        let total = per_task_mw * tasks as f64;
        let single = *single.get_or_insert(total);
        println!(
            "{:>5} {:>10.0} req/s {:>10.0} req/s {:>14.2} {:>10.0} req/s {:>9.3}",
            tasks,
            per_task_mw,
            total,
            total / single,
            median(&mut hand),
            median(&mut ratio),
        );
    }
    println!("medians over rounds; mw = through AiutaAuthMiddleware, hand = header set by hand.");
}
