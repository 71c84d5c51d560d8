//! The envelope of a Jupyter message (protocol 5.3): routing identities, the `<IDS|MSG>`
//! delimiter, the signature, then header, parent header, metadata and content as JSON, and
//! any binary buffers.
use bytes::Bytes;
use serde_json::{Value, json};
use zeromq::ZmqMessage;

use super::connection::{Signer, multipart};
use crate::error::{Error, Result};

const DELIMITER: &[u8] = b"<IDS|MSG>";

/// The protocol version the kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.3";

/// One message, received or to send.
#[derive(Debug, Clone)]
pub struct Message {
    /// The routing frames before the delimiter (a ROUTER peer's identity; an iopub topic).
    pub identities: Vec<Bytes>,
    pub header: Value,
    pub parent_header: Value,
    pub metadata: Value,
    pub content: Value,
    pub buffers: Vec<Bytes>,
}

impl Message {
    /// Parses the frames of a received message and checks its signature.
    pub fn from_frames(message: ZmqMessage, signer: &Signer) -> Result<Message> {
        let mut frames = message.into_vec();
        let at = frames.iter().position(|f| f.as_ref() == DELIMITER).ok_or_else(|| invalid("no <IDS|MSG> delimiter"))?;
        if frames.len() < at + 6 {
            return Err(invalid(&format!("{} frames after the delimiter; a message has at least 5", frames.len() - at - 1)));
        }
        let rest = frames.split_off(at + 1);
        frames.pop(); // the delimiter
        let (signature, parts) = (&rest[0], &rest[1..]);
        let json: Vec<&[u8]> = parts[..4].iter().map(|p| p.as_ref()).collect();
        if !signer.verify(signature, &json) {
            return Err(invalid("the signature does not match the connection's key"));
        }
        let parse = |i: usize| serde_json::from_slice::<Value>(json[i]).map_err(|e| invalid(&format!("part {i} is not JSON: {e}")));
        Ok(Message {
            identities: frames,
            header: parse(0)?,
            parent_header: parse(1)?,
            metadata: parse(2)?,
            content: parse(3)?,
            buffers: parts[4..].to_vec(),
        })
    }

    /// The frames to send, signed.
    pub fn to_frames(&self, signer: &Signer) -> Option<ZmqMessage> {
        let json: Vec<Vec<u8>> = [&self.header, &self.parent_header, &self.metadata, &self.content].iter().map(|v| v.to_string().into_bytes()).collect();
        let signature = signer.sign(&json.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let mut frames = self.identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature));
        frames.extend(json.into_iter().map(Bytes::from));
        frames.extend(self.buffers.iter().cloned());
        multipart(frames)
    }

    /// `header.msg_type`.
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or_default()
    }

    /// A message caused by this one (its parent), with a fresh header; no identities.
    pub fn child(&self, session: &str, msg_type: &str, content: Value) -> Message {
        Message {
            identities: Vec::new(),
            header: header(session, msg_type),
            parent_header: self.header.clone(),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        }
    }

    /// The reply to this request (`x_request` → `x_reply`), routed back to its sender.
    pub fn reply(&self, session: &str, content: Value) -> Message {
        let msg_type = self.msg_type().replace("_request", "_reply");
        Message { identities: self.identities.clone(), ..self.child(session, &msg_type, content) }
    }

    /// The same message for the iopub channel, under the topic `kernel.<session>.<msg_type>`.
    pub fn on_topic(mut self, session: &str) -> Message {
        let topic = format!("kernel.{session}.{}", self.msg_type());
        self.identities = vec![Bytes::from(topic)];
        self
    }
}

/// A new header.
pub fn header(session: &str, msg_type: &str) -> Value {
    json!({
        "msg_id": uuid::Uuid::new_v4().to_string(),
        "session": session,
        "username": "kernel",
        "date": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        "msg_type": msg_type,
        "version": PROTOCOL_VERSION,
    })
}

fn invalid(what: &str) -> Error {
    Error::Invalid(format!("kernel: a malformed message: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_its_frames_and_a_wrong_key_is_refused() {
        let signer = Signer::new("k");
        let request = Message {
            identities: vec![Bytes::from_static(b"peer")],
            header: header("client", "execute_request"),
            parent_header: json!({}),
            metadata: json!({}),
            content: json!({ "code": "1 + 1" }),
            buffers: vec![],
        };
        let frames = request.to_frames(&signer).unwrap();
        let back = Message::from_frames(frames.clone(), &signer).unwrap();
        assert_eq!((back.msg_type(), &back.content, &back.identities), ("execute_request", &request.content, &request.identities));
        assert!(Message::from_frames(frames, &Signer::new("other")).is_err());
        let reply = back.reply("kernel-session", json!({ "status": "ok" }));
        assert_eq!((reply.msg_type(), &reply.identities, &reply.parent_header), ("execute_reply", &request.identities, &request.header));
    }
}
