//! RPC notifications (`notify_scripts`): at each of the engine's action points rcr sends the client a
//! NOTIFY response naming the action (criu's script name) and waits for its NOTIFY request; an answer
//! without `notify_success` fails the action, as a failing action script does.

use super::sock::{Conn, Packet};
use prost::Message;
use rcr_engine::notify::{Action, Notify};
use rcr_images::rpc::{CriuNotify, CriuReqType, CriuResp};
use std::sync::Arc;

pub struct RpcNotify {
    pub conn: Arc<Conn>,
}

impl Notify for RpcNotify {
    fn notify(&self, action: Action, root_pid: Option<i32>) -> Result<(), rcr_engine::notify::ListenerError> {
        Ok(self.ask(action, root_pid)?)
    }
}

impl RpcNotify {
    /// Sends the notification and reads the client's answer.
    fn ask(&self, action: Action, root_pid: Option<i32>) -> Result<(), String> {
        // criu gives the root's pid with these two only (runc moves the tree into its cgroups then).
        let pid = match action {
            Action::SetupNamespaces | Action::PostRestore => root_pid,
            _ => None,
        };
        let resp = CriuResp {
            r#type: CriuReqType::Notify as i32,
            success: true,
            notify: Some(CriuNotify { script: Some(action.name().to_string()), pid }),
            ..Default::default()
        };
        self.conn.send(&resp.encode_to_vec())?;
        let bytes = match self.conn.recv()? {
            Packet::Data(b) => b,
            Packet::TooLarge(n) => return Err(format!("the RPC client answered the {} notification with a {n}-byte packet", action.name())),
            Packet::Closed => return Err(format!("the RPC client closed the connection instead of answering the {} notification", action.name())),
        };
        let req = rcr_images::rpc::decode_request(&bytes).map_err(|e| format!("the RPC client's answer to the {} notification: {e}", action.name()))?;
        if req.r#type != CriuReqType::Notify as i32 {
            return Err(format!("the RPC client answered the {} notification with a {:?} request", action.name(), req.r#type()));
        }
        if req.notify_success != Some(true) {
            return Err(format!("the RPC client reported a failure at {}", action.name()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcr_images::rpc::CriuReq;

    /// A client thread answering each notification with `answers` in turn; returns what it was sent.
    fn client(conn: Conn, answers: Vec<Option<bool>>) -> std::thread::JoinHandle<Vec<CriuNotify>> {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for ok in answers {
                let Ok(Packet::Data(b)) = conn.recv() else { break };
                let resp = CriuResp::decode(b.as_slice()).unwrap();
                assert_eq!(resp.r#type(), CriuReqType::Notify);
                seen.push(resp.notify.unwrap());
                let req = CriuReq { r#type: CriuReqType::Notify as i32, notify_success: ok, ..Default::default() };
                conn.send(&req.encode_to_vec()).unwrap();
            }
            seen
        })
    }

    #[test]
    fn notifications_are_sent_and_answers_decide() {
        let (ours, theirs) = Conn::pair();
        let n = RpcNotify { conn: Arc::new(ours) };
        let c = client(theirs, vec![Some(true), Some(true), Some(false), None]);
        n.notify(Action::PreDump, None).unwrap();
        n.notify(Action::PostRestore, Some(42)).unwrap();
        let e = n.notify(Action::PostDump, Some(7)).unwrap_err();
        assert!(e.to_string().contains("post-dump"), "{e}");
        assert!(n.notify(Action::SetupNamespaces, Some(42)).is_err());
        let seen = c.join().unwrap();
        let got: Vec<(String, Option<i32>)> = seen.into_iter().map(|s| (s.script.unwrap(), s.pid)).collect();
        assert_eq!(
            got,
            vec![("pre-dump".into(), None), ("post-restore".into(), Some(42)), ("post-dump".into(), None), ("setup-namespaces".into(), Some(42))]
        );
    }

    #[test]
    fn a_closed_client_fails_the_action() {
        let (ours, theirs) = Conn::pair();
        drop(theirs);
        let n = RpcNotify { conn: Arc::new(ours) };
        assert!(n.notify(Action::PreDump, None).is_err());
    }
}
