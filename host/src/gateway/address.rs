//! Where the gateway listens: `--http ADDR` read as a socket address.
//!
//! * a bare port, `8080`, is `127.0.0.1:8080`: loopback by default, so
//!   that a gateway is never open to the network by accident;
//! * `localhost:PORT` is `127.0.0.1:PORT`;
//! * otherwise an IP socket address: `127.0.0.1:8080`, `[::1]:8080`,
//!   `0.0.0.0:8080` (every interface: tokens required, see
//!   [`super::Gateway::bind`]).
//!
//! Port 0 asks the system for a free port; the host prints the address it
//! bound.

use std::net::{Ipv4Addr, SocketAddr};

/// An `--http` value that is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an address to listen on; give a port (`8080`, on loopback), `localhost:8080`, or an IP address \
     and port (`127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`)"
)]
pub struct AddressError(pub String);

/// Reads `text` as the module docs say.
///
/// # Errors
///
/// [`AddressError`] if it is none of those forms.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, AddressError> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(|_| AddressError(text.to_string()));
    }
    text.parse::<SocketAddr>().map_err(|_| AddressError(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{AddressError, parse_listen_address};

    #[test]
    fn a_bare_port_and_localhost_listen_on_loopback() {
        assert_eq!(parse_listen_address("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(parse_listen_address("localhost:0").unwrap().to_string(), "127.0.0.1:0");
    }

    #[test]
    fn an_ip_address_is_taken_as_given() {
        assert_eq!(parse_listen_address("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert_eq!(parse_listen_address("[::1]:8080").unwrap().to_string(), "[::1]:8080");
    }

    #[test]
    fn anything_else_is_refused_with_the_forms_it_takes() {
        for bad in ["", "80800", "example.com:80", "localhost", "127.0.0.1"] {
            assert_eq!(parse_listen_address(bad), Err(AddressError(bad.to_string())), "{bad}");
        }
        assert!(AddressError("x".into()).to_string().contains("`127.0.0.1:8080`"));
    }
}
