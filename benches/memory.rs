//! Resident memory while 1,000,000 mandatory calls, each with different parameters, go through
//! `AiutaAuthMiddleware` with `max_cached` at its default: the cache must stay bounded, so the
//! resident set stays flat after the cache fills. Reads VmRSS and VmHWM (the peak) from
//! /proc/self/status every 100,000 calls; the provider answers at once and the chain ends in a
//! terminal middleware, so no network is involved.
//!
//! `cargo bench --bench memory` (add `-- --quick` for 200,000 calls).

mod common;

use std::convert::Infallible;
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::{Answer, chain};
use reqwest_aiuta_auth::{AiutaAuthMiddleware, DEFAULT_MAX_CACHED, JwtAuth, JwtParams};

/// VmRSS and VmHWM of this process, in KiB.
fn resident_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    if common::listing_or_testing() {
        return;
    }
    let calls: u64 = if common::quick() { 200_000 } else { 1_000_000 };
    let checkpoint = calls / 10;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // A distinct token per call, as a real backend would sign each call's parameters.
    let issued = AtomicU64::new(0);
    let template = common::jwt(0);
    let (unsigned, _) = template.rsplit_once('.').unwrap();
    let unsigned = unsigned.to_owned();
    let provider = move |_params: JwtParams| {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        ready(Ok::<_, Infallible>(format!("{unsigned}.c2lnLT{n:x}")))
    };
    let auth = JwtAuth::new(common::SUBSCRIPTION_ID, provider).unwrap();
    let client = chain(
        reqwest::Client::new(),
        AiutaAuthMiddleware::new(auth.clone()),
        Some(Answer),
    );
    let url: reqwest::Url = "https://api.aiuta.com/digital-try-on/v1/sku_images_operations"
        .parse()
        .unwrap();

    let (start_rss, _) = resident_kib();
    println!("{calls} mandatory calls with distinct parameters, max_cached = {DEFAULT_MAX_CACHED}");
    println!("before the first call: VmRSS {:.1} MiB", mib(start_rss));
    println!(
        "{:>9} {:>13} {:>13} {:>14} {:>10}",
        "calls", "VmRSS (MiB)", "VmHWM (MiB)", "cached tokens", "µs/call"
    );
    let started = Instant::now();
    let mut rss_at = Vec::new();
    runtime.block_on(async {
        let mut since = Instant::now();
        for i in 1..=calls {
            // ~200 bytes like a try-on start; the image id makes each call's parameters unique.
            let body = format!(
                concat!(
                    r#"{{"uploaded_image_id":"img_{:032x}","sku_id":"sku_7b0a91c2","#,
                    r#""sku_catalog_name":"spring-collection-2025","background":"studio-grey","#,
                    r#""image_count":2,"aspect_ratio":"3:4","seed":1234567}}"#
                ),
                i
            );
            let response = client.post(url.clone()).body(body).send().await.unwrap();
            assert!(response.status().is_success());
            if i % checkpoint == 0 {
                let per_call = since.elapsed().as_secs_f64() * 1e6 / checkpoint as f64;
                let cached = auth.cached_tokens().await;
                let (rss, hwm) = resident_kib();
                rss_at.push(rss);
                println!(
                    "{:>9} {:>13.1} {:>13.1} {:>14} {:>10.2}",
                    i,
                    mib(rss),
                    mib(hwm),
                    cached,
                    per_call
                );
                since = Instant::now();
            }
        }
    });
    let (_, peak) = resident_kib();
    let first = rss_at[0];
    let last = *rss_at.last().unwrap();
    println!(
        "peak VmHWM {:.1} MiB; VmRSS from the first checkpoint to the last: {:+.1} MiB; {:.1} s",
        mib(peak),
        mib(last) - mib(first),
        started.elapsed().as_secs_f64()
    );
}
