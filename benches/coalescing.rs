//! A burst of 1,000 concurrent identical mandatory calls on a cold cache, against a JWT provider
//! that takes 50 ms: with the cache they share one fetch; with `cache(false)` each call fetches.
//! Reports provider calls per burst and the burst's total time, in units of the provider latency.
//!
//! `cargo bench --bench coalescing` (add `-- --quick` for a first look).

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Answer, Path, chain, median};
use reqwest_aiuta_auth::{AiutaAuthMiddleware, JwtAuth, JwtParams};

const CALLS: usize = 1_000;
const PROVIDER_LATENCY: Duration = Duration::from_millis(50);
const PATH: Path = Path::JwtMandatory;

/// One burst on a fresh (cold) `JwtAuth`: provider calls and time until every call is answered.
async fn burst(cache: bool) -> (usize, Duration) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let token = common::jwt(1);
    let provider = move |_params: JwtParams| {
        counted.fetch_add(1, Ordering::Relaxed);
        let token = token.clone();
        async move {
            tokio::time::sleep(PROVIDER_LATENCY).await;
            Ok::<_, Infallible>(token)
        }
    };
    let auth = JwtAuth::builder(common::SUBSCRIPTION_ID, provider)
        .cache(cache)
        .build()
        .unwrap();
    let client = chain(
        reqwest::Client::new(),
        AiutaAuthMiddleware::new(auth),
        Some(Answer),
    );
    let url = PATH.url("https://api.aiuta.com");

    let start = Instant::now();
    let handles: Vec<_> = (0..CALLS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { PATH.request(&client, &url).send().await })
        })
        .collect();
    for handle in handles {
        let response = handle.await.unwrap().unwrap();
        assert!(response.status().is_success());
    }
    (calls.load(Ordering::Relaxed), start.elapsed())
}

fn main() {
    if common::listing_or_testing() {
        return;
    }
    let bursts = if common::quick() { 3 } else { 15 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{CALLS} concurrent identical mandatory calls, cold cache, provider latency \
         {PROVIDER_LATENCY:?} (median of {bursts} bursts)"
    );
    println!(
        "{:<30} {:>15} {:>12} {:>16}",
        "provider", "provider calls", "total time", "× provider lat."
    );
    for (name, cache) in [
        ("cached, one shared fetch", true),
        ("cache(false), fetch per call", false),
    ] {
        let mut calls = Vec::new();
        let mut times = Vec::new();
        runtime.block_on(async {
            burst(cache).await; // warm-up: threads, allocator
            for _ in 0..bursts {
                let (n, elapsed) = burst(cache).await;
                calls.push(n);
                times.push(elapsed.as_secs_f64());
            }
        });
        let (fewest, most) = (calls.iter().min().unwrap(), calls.iter().max().unwrap());
        let calls = match fewest == most {
            true => fewest.to_string(),
            false => format!("{fewest}..{most}"),
        };
        let time = median(&mut times);
        println!(
            "{:<30} {:>15} {:>9.1} ms {:>16.2}",
            name,
            calls,
            time * 1e3,
            time / PROVIDER_LATENCY.as_secs_f64()
        );
    }
}
