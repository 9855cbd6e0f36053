//! An authoritative DNS server on 127.0.0.1 for the sender-check tests:
//! real DNS over UDP (and TCP), answering from a table of records, NXDOMAIN
//! for every other name. Or one that never answers, for timeouts.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Records by (lower-case name without the final dot, type).
pub type Zone = HashMap<(String, RecordType), Vec<RData>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control: Arc<Control>,
}

/// What a test changes while the server runs: all of it down, or zones
/// that never answer.
#[derive(Default)]
struct Control {
    down: std::sync::atomic::AtomicBool,
    blackholed: std::sync::Mutex<Vec<String>>,
}

impl Control {
    /// Whether a query for `query` goes unanswered.
    fn drops(&self, query: &[u8]) -> bool {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let Ok(request) = Message::from_vec(query) else {
            return false;
        };
        let zones = self.blackholed.lock().unwrap();
        request.queries().iter().any(|q| {
            let name = q
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            zones
                .iter()
                .any(|z| name == *z || name.ends_with(&format!(".{z}")))
        })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A TXT record set of one string.
pub fn txt(zone: &mut Zone, name: &str, text: &str) {
    zone.entry((name.to_ascii_lowercase(), RecordType::TXT))
        .or_default()
        .push(RData::TXT(TXT::new(vec![text.to_owned()])));
}

/// An A record.
pub fn a(zone: &mut Zone, name: &str, ip: std::net::Ipv4Addr) {
    zone.entry((name.to_ascii_lowercase(), RecordType::A))
        .or_default()
        .push(RData::A(ip.into()));
}

fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::new(request.id(), MessageType::Response, request.op_code());
    response.set_authoritative(true);
    response.set_recursion_desired(request.recursion_desired());
    response.set_recursion_available(true);
    let mut found = false;
    let mut name_exists = false;
    for q in request.queries() {
        response.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        name_exists |= zone.keys().any(|(n, _)| *n == name);
        if let Some(records) = zone.get(&(name, q.query_type())) {
            found = true;
            for rdata in records {
                response.add_answer(Record::from_rdata(
                    Name::from_ascii(q.name().to_ascii()).ok()?,
                    60,
                    rdata.clone(),
                ));
            }
        }
    }
    if !found && !name_exists {
        response.set_response_code(ResponseCode::NXDomain);
    }
    response.to_vec().ok()
}

/// A UDP socket and a TCP listener on one loopback port. The UDP port the
/// system picks may be taken for TCP (by another test): pick again until
/// both are ours.
async fn bind() -> (UdpSocket, std::net::SocketAddr, TcpListener) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, addr, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

impl DnsServer {
    /// From now on every query goes unanswered (`true`), or is answered again.
    pub fn set_down(&self, down: bool) {
        self.control
            .down
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Queries for `zone` and the names under it go unanswered from now on.
    pub fn blackhole(&self, zone: &str) {
        self.control
            .blackholed
            .lock()
            .unwrap()
            .push(zone.to_ascii_lowercase());
    }

    /// Serves `zone` on 127.0.0.1, UDP and TCP on one port.
    pub async fn start(zone: Zone) -> DnsServer {
        let (udp, addr, tcp) = bind().await;
        let control = Arc::new(Control::default());
        let zone = Arc::new(zone);
        let udp_zone = zone.clone();
        let (udp_control, tcp_control) = (control.clone(), control.clone());
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if udp_control.drops(&buf[..n]) {
                    continue;
                }
                if let Some(reply) = answer(&udp_zone, &buf[..n]) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    return;
                };
                let zone = zone.clone();
                let control = tcp_control.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        if control.drops(&query) {
                            // Held open, never answered, as a dead server does.
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                            return;
                        }
                        let Some(reply) = answer(&zone, &query) else {
                            return;
                        };
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend(reply);
                        if stream.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        DnsServer {
            addr,
            tasks: vec![udp_task, tcp_task],
            control,
        }
    }

    /// A server that reads every query and never answers.
    pub async fn silent() -> DnsServer {
        let (udp, addr, tcp) = bind().await;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    r = udp.recv_from(&mut buf) => if r.is_err() { return },
                    r = tcp.accept() => match r {
                        Ok((stream, _)) => held.push(stream),
                        Err(_) => return,
                    },
                }
            }
        });
        DnsServer {
            addr,
            tasks: vec![task],
            control: Arc::default(),
        }
    }
}
