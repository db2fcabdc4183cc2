//! A cluster member as etcd's member list gives it, and its shape in the `members` fact.

use crate::ids;
use serde_json::{json, Value};

/// A member of the member list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl Member {
    pub fn from_etcd(m: &etcd_client::Member) -> Member {
        Member {
            id: m.id(),
            name: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            is_learner: m.is_learner(),
        }
    }

    /// A member added but never started has no name and no client URLs.
    pub fn started(&self) -> bool {
        !self.name.is_empty() || !self.client_urls.is_empty()
    }

    /// The member as an element of the `members` fact (ID as a 16-digit hex string).
    pub fn json(&self) -> Value {
        json!({
            "id": ids::hex(self.id),
            "name": self.name,
            "peer_urls": self.peer_urls,
            "client_urls": self.client_urls,
            "is_learner": self.is_learner,
            "started": self.started(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_shape_and_started() {
        let mut m = Member {
            id: 0x8e9e05c52164694d,
            name: String::new(),
            peer_urls: vec!["http://10.0.0.1:2380".into()],
            client_urls: vec![],
            is_learner: false,
        };
        assert!(!m.started());
        assert_eq!(m.json()["id"], "8e9e05c52164694d");
        assert_eq!(m.json()["started"], false);
        m.name = "n1".into();
        assert!(m.started());
    }
}
