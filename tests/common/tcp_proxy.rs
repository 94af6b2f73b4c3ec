//! A TCP proxy on 127.0.0.1 that can be cut: a network outage between the bot
//! and a database, without stopping the database. Cut, it drops every open
//! connection and every new one; blackholed, it keeps every connection open
//! but forwards nothing, either way (what a failover or a dead link looks
//! like from the client: no error, no answer); restored, it forwards again.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

const UP: u8 = 0;
const CUT: u8 = 1;
const BLACKHOLE: u8 = 2;

pub struct TcpProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped by each blackhole: a connection open when it began forwards
    /// nothing ever again (what it sent into the hole is lost), as a
    /// connection to a server that failed over never answers again.
    epoch: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    task: JoinHandle<()>,
}

/// Copies `from` to `to` until either closes; while `swallow()` says so,
/// reads and drops what arrives instead.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    swallow: impl Fn() -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if swallow() {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(UP));
        let epoch = Arc::new(AtomicU64::new(0));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (mode2, epoch2, conns2) = (mode.clone(), epoch.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (mode, epoch) = (mode2.clone(), epoch2.clone());
                let conn = match mode.load(Ordering::SeqCst) {
                    CUT => {
                        drop(inbound); // refused: closed at once
                        continue;
                    }
                    BLACKHOLE => tokio::spawn(async move {
                        // Accepted, and never answered.
                        let (mut read, _write) = inbound.into_split();
                        let mut buf = vec![0u8; 16 * 1024];
                        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
                    }),
                    _ => tokio::spawn(async move {
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let born = epoch.load(Ordering::SeqCst);
                        let holed = move || epoch.load(Ordering::SeqCst) != born;
                        let holed2 = holed.clone();
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            pump(in_read, out_write, holed),
                            pump(out_read, in_write, holed2),
                        );
                    }),
                };
                conns2.lock().unwrap().push(conn.abort_handle());
            }
        });
        TcpProxy {
            addr,
            mode,
            epoch,
            conns,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Stops forwarding without closing anything: open connections stay
    /// open and forward nothing from now on, either way, even after
    /// [`restore`](Self::restore); so do the connections it accepts until
    /// then (a client waits on them for as long as it is willing to).
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Forwards again (new connections).
    pub fn restore(&self) {
        self.mode.store(UP, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
