//! What the middleware adds to a request, without the network.
//!
//! Each chain ends in [`Answer`], which answers at once; the baseline chain has, instead of
//! `AiutaAuthMiddleware`, a middleware that sets the same header by hand. Criterion times each
//! chain; then an interleaved pass (by hand, middleware, by hand again, in rotating order) gives
//! the added nanoseconds of thread CPU time and the ratio, with an A/A ratio that shows the noise.
//!
//! `cargo bench --bench overhead` (add `-- --quick` for a first look). For a profiler:
//! `AIUTA_BENCH_PROFILE=jwt_mandatory_cached/middleware:1000000 target/release/deps/overhead-*`
//! sends that many requests through one chain and exits (see [`PROFILE_ENV`]).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Answer, Path, ProfileSpec, chain, median, verdict};
use criterion::Criterion;
use reqwest::Url;
use reqwest_middleware::ClientWithMiddleware;

/// The added time per request each path must stay under (issue 5).
fn goal_ns(path: Path) -> f64 {
    match path {
        Path::JwtMandatory | Path::JwtMandatoryNoRetry => 1000.0,
        Path::ApiKey | Path::JwtOptional | Path::OffList => 200.0,
    }
}

struct Setup {
    path: Path,
    url: Url,
    by_hand: ClientWithMiddleware,
    middleware: ClientWithMiddleware,
    by_hand_again: ClientWithMiddleware,
}

impl Setup {
    fn new(path: Path, runtime: &tokio::runtime::Runtime) -> Self {
        let token = common::jwt(0);
        let base = match path {
            Path::OffList => "https://cdn.example.com",
            Path::ApiKey | Path::JwtOptional | Path::JwtMandatory | Path::JwtMandatoryNoRetry => {
                "https://api.aiuta.com"
            }
        };
        let client = reqwest::Client::new();
        let setup = Setup {
            path,
            url: path.url(base),
            by_hand: chain(client.clone(), path.by_hand(&token), Some(Answer)),
            middleware: chain(client.clone(), path.middleware(None, &token), Some(Answer)),
            by_hand_again: chain(client, path.by_hand(&token), Some(Answer)),
        };
        // Fills the JWT cache, so that the timed calls find their token.
        runtime.block_on(send(&setup.middleware, path, &setup.url));
        setup
    }
}

async fn send(client: &ClientWithMiddleware, path: Path, url: &Url) {
    let response = path.request(client, url).send().await.unwrap();
    black_box(response);
}

async fn time(client: &ClientWithMiddleware, path: Path, url: &Url, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        send(client, path, url).await;
    }
    start.elapsed()
}

/// Like [`time`], in CPU time of this thread: on shared cores, the time other processes take
/// the core away is not counted.
async fn cpu_time(client: &ClientWithMiddleware, path: Path, url: &Url, iters: u64) -> Duration {
    let start = common::thread_cpu_time();
    for _ in 0..iters {
        send(client, path, url).await;
    }
    common::thread_cpu_time() - start
}

fn criterion_benches(criterion: &mut Criterion, runtime: &tokio::runtime::Runtime, s: &Setup) {
    let mut group = criterion.benchmark_group(format!("overhead/{}", s.path.name()));
    for (name, client) in [("by_hand", &s.by_hand), ("middleware", &s.middleware)] {
        group.bench_function(name, |b| {
            b.to_async(runtime)
                .iter_custom(|iters| time(client, s.path, &s.url, iters));
        });
    }
    group.finish();
}

/// Nanoseconds per request of the three chains, interleaved round by round.
struct Pass {
    by_hand: Vec<f64>,
    middleware: Vec<f64>,
    by_hand_again: Vec<f64>,
}

fn interleaved(runtime: &tokio::runtime::Runtime, s: &Setup, rounds: usize, batch: u64) -> Pass {
    let mut pass = Pass {
        by_hand: Vec::new(),
        middleware: Vec::new(),
        by_hand_again: Vec::new(),
    };
    let chains = [&s.by_hand, &s.middleware, &s.by_hand_again];
    runtime.block_on(async {
        for chain in chains {
            cpu_time(chain, s.path, &s.url, batch).await; // warm-up
        }
        for round in 0..rounds {
            let mut ns = [0.0; 3];
            for step in 0..3 {
                let which = (round + step) % 3;
                let elapsed = cpu_time(chains[which], s.path, &s.url, batch).await;
                ns[which] = elapsed.as_nanos() as f64 / batch as f64;
            }
            pass.by_hand.push(ns[0]);
            pass.middleware.push(ns[1]);
            pass.by_hand_again.push(ns[2]);
        }
    });
    pass
}

fn summary(runtime: &tokio::runtime::Runtime, setups: &[Setup], quick: bool) {
    // Short rounds, finely interleaved: the load of a shared box changes slowly, so the two
    // rounds of a pair see the same conditions.
    let (rounds, batch) = if quick { (61, 1_000) } else { (301, 2_000) };
    println!();
    println!(
        "Added cost per request, no network, in thread CPU time ({rounds} interleaved rounds \
         of {batch} requests)"
    );
    println!(
        "{:<22} {:>10} {:>11} {:>9} {:>11} {:>7} {:>7} {:>7}  verdict",
        "path", "by hand", "middleware", "added", "added(min)", "ratio", "A/A", "goal"
    );
    for s in setups {
        let mut pass = interleaved(runtime, s, rounds, batch);
        let paired = |a: &[f64], b: &[f64], f: fn(f64, f64) -> f64| -> Vec<f64> {
            a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect()
        };
        let mut added = paired(&pass.middleware, &pass.by_hand, |m, h| m - h);
        let mut ratio = paired(&pass.middleware, &pass.by_hand, |m, h| m / h);
        let mut noise = paired(&pass.by_hand_again, &pass.by_hand, |a, h| a / h);
        let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let added_min = fastest(&pass.middleware) - fastest(&pass.by_hand);
        let added = median(&mut added);
        let goal = goal_ns(s.path);
        println!(
            "{:<22} {:>7.0} ns {:>8.0} ns {:>6.0} ns {:>8.0} ns {:>7.3} {:>7.3} {:>4} ns  {}",
            s.path.name(),
            median(&mut pass.by_hand),
            median(&mut pass.middleware),
            added,
            added_min,
            median(&mut ratio),
            median(&mut noise),
            goal,
            verdict(added < goal, added_min < goal),
        );
    }
    println!("by hand, middleware: medians over rounds; added: median of (middleware - by hand)");
    println!("over pairs of rounds; added(min): fastest middleware round - fastest");
    println!(
        "by-hand round; ratio: middleware / by hand; A/A: by hand again / by hand, the noise."
    );
}

/// `AIUTA_BENCH_PROFILE=<path>/<by_hand|middleware>:<requests>` sends that many requests and
/// exits, for a profiler (`perf record`, `valgrind --tool=callgrind`) to watch.
const PROFILE_ENV: &str = "AIUTA_BENCH_PROFILE";

fn profile(spec: &str) {
    let ProfileSpec {
        path,
        middleware,
        requests,
        ..
    } = ProfileSpec::parse(spec);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = Setup::new(path, &runtime);
    let client = if middleware {
        &setup.middleware
    } else {
        &setup.by_hand
    };
    runtime.block_on(time(client, path, &setup.url, requests));
}

fn main() {
    if let Ok(spec) = std::env::var(PROFILE_ENV) {
        return profile(&spec);
    }
    let quick = common::quick();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let setups: Vec<Setup> = Path::ALL
        .into_iter()
        .map(|path| Setup::new(path, &runtime))
        .collect();
    for setup in &setups {
        criterion_benches(&mut criterion, &runtime, setup);
    }
    criterion.final_summary();
    if !common::listing_or_testing() {
        summary(&runtime, &setups, quick);
    }
}
