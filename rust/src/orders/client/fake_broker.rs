//! Test-only: a scripted HTTP/1.1 broker on loopback (std threads, no Python), so the client
//! core's retries, re-login and reconciliation can be checked by `cargo test`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Client, Settings};

/// What the script answers to one request.
pub enum Reply {
    /// Status, JSON body, optional `Retry-After`.
    Json(u16, String, Option<&'static str>),
    /// Close the connection without answering.
    Drop,
}

/// One request as the broker saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub body: String,
    pub authorization: Option<String>,
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A running fake broker; `seen` lists every request in arrival order.
pub struct FakeBroker {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeBroker {
    /// Start serving; `script(request, n)` answers the `n`-th request (from 1) to that path.
    pub fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, counts, log) = (script.clone(), counts.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*script, &counts, &log));
            }
        });
        FakeBroker { url, seen }
    }

    /// Requests seen on `path`.
    pub fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .map(|s| s.iter().filter(|r| r.path == path).count())
            .unwrap_or(0)
    }

    /// A client of this broker with short delays.
    pub fn client(&self, delays: &[f64]) -> Client {
        Client::new(Settings {
            base_url: self.url.clone(),
            username: "u".to_owned(),
            api_key: "k".to_owned(),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            retry_delays_s: delays.to_vec(),
            jitter: false,
            reconcile_lookback_s: 3600.0,
            max_connections: 4,
            max_retry_after_s: delays.iter().copied().fold(0.0, f64::max),
        })
        .expect("client")
    }
}

fn serve(
    stream: TcpStream,
    script: &Script,
    counts: &Mutex<HashMap<String, usize>>,
    log: &Mutex<Vec<Seen>>,
) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let (mut length, mut authorization) = (0usize, None);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Seen {
            path: path.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            authorization,
        };
        let n = {
            let mut counts = counts.lock().expect("counts");
            let n = counts.entry(path).or_insert(0);
            *n += 1;
            *n
        };
        log.lock().expect("log").push(request.clone());
        match script(&request, n) {
            Reply::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Json(status, json, retry_after) => {
                let extra = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}\
                     Content-Length: {}\r\n\r\n",
                    json.len()
                );
                if writer.write_all(head.as_bytes()).is_err()
                    || writer.write_all(json.as_bytes()).is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A success envelope around `payload` (`"key":value` pairs, or empty).
pub fn ok(payload: &str) -> Reply {
    let sep = if payload.is_empty() { "" } else { "," };
    Reply::Json(
        200,
        format!(r#"{{{payload}{sep}"success":true,"errorCode":0,"errorMessage":null}}"#),
        None,
    )
}

/// The login answer with an opaque token.
pub fn login(token: &str) -> Reply {
    ok(&format!(r#""token":"{token}""#))
}
