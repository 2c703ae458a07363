//! Which certificate a handshake gets: the first whose names match the client's SNI (exactly, or
//! through a `*.` wildcard one label deep), else the first configured, which also serves clients
//! that send no name (an IP address, an old client).
//!
//! It reads no file (see `certs`) and holds the certificates of one load: a rotation builds a new
//! one, and handshakes already under way keep the one they started with. It also hands the name
//! a client asked for to that client's session (`session`), which rustls does not tell it.

use std::cell::RefCell;
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

thread_local! {
    /// The name the last handshake this thread drove asked for. rustls's unbuffered connection
    /// does not tell its SNI, and the resolver is the one place that sees it: it is called
    /// during the session's own call into rustls, on the session's thread, which takes the name
    /// right after (`session`).
    static REQUESTED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Takes the name the resolver saw since the last call on this thread, if any.
pub fn take_requested_name() -> Option<String> {
    REQUESTED.with(|requested| requested.borrow_mut().take())
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name();
        REQUESTED.with(|requested| *requested.borrow_mut() = sni.map(str::to_string));
        Some(Arc::clone(&self.choose(sni).key))
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
