//! Which certificate a handshake gets: the first whose names match the client's SNI (exactly, or
//! through a `*.` wildcard one label deep), else the first configured, which also serves clients
//! that send no name (an IP address, an old client).
//!
//! It reads no file (see `certs`) and holds the certificates of one load: a rotation builds a new
//! one, and handshakes already under way keep the one they started with.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::Loaded;

#[derive(Debug)]
pub struct ByName {
    /// At least one.
    certificates: Vec<Loaded>,
}

impl ByName {
    /// `None` when `certificates` is empty.
    pub fn new(certificates: Vec<Loaded>) -> Option<ByName> {
        (!certificates.is_empty()).then_some(ByName { certificates })
    }

    /// The certificate served for `sni`.
    pub fn choose(&self, sni: Option<&str>) -> &Loaded {
        let matching = sni.and_then(|sni| {
            let sni = sni.to_ascii_lowercase();
            self.certificates
                .iter()
                .find(|c| c.names.iter().any(|name| matches(name, &sni)))
        });
        // `new` refuses an empty list.
        matching.unwrap_or(&self.certificates[0])
    }
}

/// Whether a certificate's `name` covers the host name `sni` (both lowercase).
fn matches(name: &str, sni: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => sni
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == sni,
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.choose(hello.server_name()).key))
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_wildcard_covers_one_label() {
        assert!(matches("a.example", "a.example"));
        assert!(!matches("a.example", "b.example"));
        assert!(matches("*.example", "a.example"));
        assert!(!matches("*.example", "example"));
        assert!(!matches("*.example", "a.b.example"));
        assert!(!matches("*.example", ".example"));
    }
}
