//! The connection file Jupyter writes for a kernel (ports, address, key), the sockets bound
//! from it, and the HMAC-SHA256 signature of every message.
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use zeromq::{Socket, ZmqMessage};

use crate::error::{Error, Result};

/// What Jupyter's connection file holds (`jupyter_client.connect.write_connection_file`).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionInfo {
    #[serde(default = "tcp")]
    pub transport: String,
    pub ip: String,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    /// The signing key; empty: messages are not signed.
    #[serde(default)]
    pub key: String,
    #[serde(default = "hmac_sha256")]
    pub signature_scheme: String,
}

fn tcp() -> String {
    "tcp".into()
}

fn hmac_sha256() -> String {
    "hmac-sha256".into()
}

impl ConnectionInfo {
    /// Reads and checks a connection file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let info: ConnectionInfo = serde_json::from_str(&text).map_err(|e| Error::Json { path: path.to_path_buf(), what: e.to_string() })?;
        if info.transport != "tcp" {
            return Err(Error::Invalid(format!("{}: transport `{}`: the kernel speaks tcp only", path.display(), info.transport)));
        }
        if info.signature_scheme != "hmac-sha256" {
            return Err(Error::Invalid(format!(
                "{}: signature_scheme `{}`: the kernel signs with hmac-sha256 only",
                path.display(),
                info.signature_scheme
            )));
        }
        Ok(info)
    }

    /// The endpoint of one of the ports: `tcp://IP:PORT`.
    pub fn endpoint(&self, port: u16) -> String {
        format!("{}://{}:{port}", self.transport, self.ip)
    }
}

/// Binds a socket of type `S` to one port of the connection.
pub async fn bind<S: Socket>(info: &ConnectionInfo, port: u16) -> Result<S> {
    let mut socket = S::new();
    let endpoint = info.endpoint(port);
    socket.bind(&endpoint).await.map_err(|e| Error::Invalid(format!("kernel: cannot bind {endpoint}: {e}")))?;
    Ok(socket)
}

/// Signs and checks messages with the connection's key (nothing to do for an empty key).
#[derive(Clone)]
pub struct Signer {
    mac: Option<Hmac<Sha256>>,
}

impl Signer {
    pub fn new(key: &str) -> Self {
        // HMAC accepts a key of any length, so this cannot fail; an empty key means no signing.
        let mac = (!key.is_empty()).then(|| Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()).flatten();
        Signer { mac }
    }

    /// The hex signature of the four JSON parts (header, parent header, metadata, content).
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Whether `signature` (hex) signs `parts`; any signature passes without a key.
    pub fn verify(&self, signature: &[u8], parts: &[&[u8]]) -> bool {
        match &self.mac {
            None => true,
            Some(mac) => {
                let Ok(expected) = hex::decode(signature) else { return false };
                let mut mac = mac.clone();
                for part in parts {
                    mac.update(part);
                }
                mac.verify_slice(&expected).is_ok()
            }
        }
    }
}

/// A multipart message from frames (never empty here: the delimiter is always there).
pub fn multipart(frames: Vec<bytes::Bytes>) -> Option<ZmqMessage> {
    ZmqMessage::try_from(frames).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_python_hmac() {
        // python3 -c "import hmac, hashlib; h = hmac.new(b'secret', digestmod=hashlib.sha256);
        //   [h.update(p) for p in [b'{}', b'{\"a\":1}']]; print(h.hexdigest())"
        let signer = Signer::new("secret");
        let sig = signer.sign(&[b"{}", b"{\"a\":1}"]);
        assert_eq!(sig, "a6c9d7e14b64a1a307625120d93d2838f893e11cd2aa400f939d8af0e507ce34");
        assert!(signer.verify(sig.as_bytes(), &[b"{}", b"{\"a\":1}"]));
        assert!(!signer.verify(sig.as_bytes(), &[b"{}", b"{\"a\":2}"]));
        assert!(!signer.verify(b"not hex", &[b"{}"]));
        assert!(Signer::new("").verify(b"", &[b"{}"]));
        assert_eq!(Signer::new("").sign(&[b"{}"]), "");
    }
}
