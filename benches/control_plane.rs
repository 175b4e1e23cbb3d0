//! Control-plane micro-benchmarks: the join-link codec and JSON-RPC parsing,
//! which every join and every API call go through.

use confgate_signalling::join_link::{self, JoinCode, OpaqueCode, Password};
use confgate_signalling::jsonrpc;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn links(c: &mut Criterion) {
    let password = Password::parse("123456").expect("password");
    let seed = join_link::encode_seed(&password, *b"aB3x").expect("seed");
    let opaque = OpaqueCode::from_random([7; join_link::OPAQUE_RANDOM_BYTES])
        .as_str()
        .to_string();
    c.bench_function("join_link/encode_seed", |b| {
        b.iter(|| join_link::encode_seed(black_box(&password), *b"aB3x"))
    });
    c.bench_function("join_link/parse_seed", |b| {
        b.iter(|| JoinCode::parse(black_box(&seed)))
    });
    c.bench_function("join_link/parse_opaque", |b| {
        b.iter(|| JoinCode::parse(black_box(&opaque)))
    });
}

fn rpc(c: &mut Criterion) {
    let single = br#"{"id":"xxxx","method":"auth.http.login","params":{"clientId":"u1074304","grantType":"client_credentials","clientSecret":"s"},"jsonrpc":"2.0"}"#;
    let batch = format!(
        "[{}]",
        vec![std::str::from_utf8(single).expect("utf8"); 20].join(",")
    );
    c.bench_function("jsonrpc/parse_single", |b| {
        b.iter(|| jsonrpc::parse_call(black_box(single)))
    });
    c.bench_function("jsonrpc/parse_batch_20", |b| {
        b.iter(|| jsonrpc::parse_call(black_box(batch.as_bytes())))
    });
}

criterion_group!(benches, links, rpc);
criterion_main!(benches);
