//! The key exchange of a handshake with [`chatproto::tls::provider`] against ring's own
//! (`cargo bench -p chatd --bench tls`): one iteration is what each end does in every TLS 1.3
//! handshake, resumed or not — a fresh X25519 key pair and the shared secret with the peer's
//! share. The provider takes aws-lc-rs's X25519 for this; a regression to ring's shows here as
//! the gap closing.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use rustls::NamedGroup;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};

fn x25519(provider: &CryptoProvider) -> &'static dyn SupportedKxGroup {
    *provider
        .kx_groups
        .iter()
        .find(|group| group.name() == NamedGroup::X25519)
        .expect("the provider offers X25519")
}

fn key_exchange(c: &mut Criterion) {
    let providers: [(&str, Arc<CryptoProvider>); 2] = [
        ("chatproto", chatproto::tls::provider()),
        ("ring", Arc::new(rustls::crypto::ring::default_provider())),
    ];
    let mut group = c.benchmark_group("x25519_key_exchange");
    for (name, provider) in &providers {
        let kx = x25519(provider);
        let peer = kx.start().expect("peer key pair");
        let peer_share = peer.pub_key().to_vec();
        group.bench_function(*name, |b| {
            b.iter(|| {
                let ours = kx.start().expect("key pair");
                ours.complete(&peer_share).expect("shared secret")
            })
        });
    }
    group.finish();
}

// The macros define undocumented functions.
#[allow(missing_docs)]
mod entry {
    use super::*;
    criterion_group!(benches, key_exchange);
}
criterion_main!(entry::benches);
