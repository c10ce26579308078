//! A real nginx in the foreground, proxying UDP with its stream module. The chat/1 load
//! balancer is started from `deploy/nginx/chat-quic.conf` itself, with only its addresses
//! replaced, so the documented configuration is the tested one.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{Launch, ServerProcess, poll_until, run_bounded, running_as_root};
use crate::tools;

/// How long nginx may take to bind its port and start its workers.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts with fresh ports when a port turned out to be taken.
const START_ATTEMPTS: usize = 3;
/// Worker processes: more than one, so that `reuseport` is exercised.
const WORKERS: usize = 2;

/// `deploy/nginx/chat-quic.conf` in this repository.
pub fn chat_quic_conf_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/chat-quic.conf")
}

/// Replaces, in the chat/1 load-balancer configuration `template`, the address of its one
/// `listen` line with `listen` and the addresses of the `server` lines of `upstream chatd_quic`
/// with `upstreams`, keeping everything else (parameters, comments) as written.
///
/// # Errors
/// When the template does not have exactly one `listen` line and one `server` line per
/// upstream: the documented configuration changed shape and the test must follow.
pub fn render_chat_quic(
    template: &str,
    listen: SocketAddr,
    upstreams: &[SocketAddr],
) -> Result<String, String> {
    let mut out = String::new();
    let (mut listens, mut servers) = (0, 0);
    let mut in_upstream = false;
    for line in template.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        let mut words = code.split_whitespace();
        let directive = words.next().unwrap_or("");
        let replaced = match directive {
            "upstream" if code.starts_with("upstream chatd_quic") && code.ends_with('{') => {
                in_upstream = true;
                None
            }
            "}" if in_upstream => {
                in_upstream = false;
                None
            }
            "server" if in_upstream => {
                let addr = upstreams.get(servers).ok_or_else(|| {
                    format!("the template has more `server` lines in `upstream chatd_quic` than the {} nodes", upstreams.len())
                })?;
                servers += 1;
                Some(replace_second_word(line, &addr.to_string()))
            }
            "listen" => {
                listens += 1;
                Some(replace_second_word(line, &listen.to_string()))
            }
            _ => None,
        };
        out.push_str(&replaced.unwrap_or_else(|| line.to_string()));
        out.push('\n');
    }
    if listens != 1 {
        return Err(format!(
            "the template has {listens} `listen` lines, expected exactly 1"
        ));
    }
    if servers != upstreams.len() {
        return Err(format!(
            "the template has {servers} `server` lines in `upstream chatd_quic`, expected {}",
            upstreams.len()
        ));
    }
    Ok(out)
}

/// `line` with its second whitespace-separated word replaced by `word` (indentation kept).
fn replace_second_word(line: &str, word: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.len() > 1 {
        // `server 10.0.0.11:4433;` ends its address with the semicolon.
        let semicolon = if words[1].ends_with(';') { ";" } else { "" };
        let replacement = format!("{word}{semicolon}");
        words[1] = &replacement;
        return format!("{indent}{}", words.join(" "));
    }
    line.to_string()
}

/// The `load_module` line this nginx needs for the stream module, if any.
///
/// # Panics
/// When nginx has no stream module, or its dynamic module file is missing.
fn stream_module_directive(nginx: &Path) -> String {
    let output = run_bounded(Command::new(nginx).arg("-V"), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    // `nginx -V` prints its configure arguments on stderr.
    let info = output.stderr;
    if info.contains("--with-stream=dynamic") {
        let modules = info
            .split_whitespace()
            .find_map(|arg| arg.strip_prefix("--modules-path="))
            .unwrap_or("/usr/lib/nginx/modules");
        let module = Path::new(modules).join("ngx_stream_module.so");
        assert!(
            module.is_file(),
            "{} loads its stream module from {}, which is missing: install libnginx-mod-stream (cargo xtask deps does)",
            nginx.display(),
            module.display()
        );
        format!("load_module {};\n", module.display())
    } else if info.contains("--with-stream") {
        String::new()
    } else {
        panic!(
            "{} was built without the stream module (UDP proxying):\n{info}",
            nginx.display()
        )
    }
}

/// A running nginx (see the module documentation).
#[derive(Debug)]
pub struct Nginx {
    process: ServerProcess,
    addr: SocketAddr,
    // Dropped after `process`.
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts the chat/1 load balancer of `deploy/nginx/chat-quic.conf` in front of `upstreams`
    /// (one per `server` line of the file), listening on a free loopback UDP port.
    ///
    /// # Panics
    /// When the file does not fit (see [`render_chat_quic`]) or nginx cannot start.
    pub fn start_chat_quic(upstreams: &[SocketAddr]) -> Nginx {
        let path = chat_quic_conf_path();
        let template = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Nginx::start(|listen| {
            render_chat_quic(&template, listen, upstreams)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
    }

    /// Starts nginx with the main-context configuration `conf(listen)` (e.g. a `stream` block),
    /// where `listen` is a free loopback address for it to listen on.
    ///
    /// # Panics
    /// When nginx rejects the configuration or cannot start, with its log tail.
    pub fn start(conf: impl Fn(SocketAddr) -> String) -> Nginx {
        let nginx = tools::nginx();
        let load_module = stream_module_directive(&nginx);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("chat-nginx-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temporary directory for nginx: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let d = dir.path().display();
            // As root the workers would switch to `nobody`; they need nothing from the test's
            // private directory, but staying root avoids surprises.
            let user = if running_as_root() {
                "user root;\n"
            } else {
                ""
            };
            let main = format!(
                "{load_module}{user}worker_processes {WORKERS};\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                 events {{ worker_connections 1024; }}\ninclude {d}/stream.conf;\n"
            );
            let write = |name: &str, text: &str| {
                std::fs::write(dir.path().join(name), text)
                    .unwrap_or_else(|e| panic!("cannot write nginx's {name}: {e}"))
            };
            write("nginx.conf", &main);
            write("stream.conf", &conf(addr));
            let launch = Launch::new("nginx", &nginx, dir.path().join("error.log"))
                .cleanup_dir(dir.path())
                .current_dir(dir.path())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .args(["-g", "daemon off;"]);
            let check = run_bounded(
                Command::new(&nginx)
                    .arg("-t")
                    .arg("-p")
                    .arg(dir.path())
                    .arg("-c")
                    .arg(dir.path().join("nginx.conf"))
                    .arg("-e")
                    .arg(dir.path().join("test.log")),
                Duration::from_secs(10),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            if !check.status.success() {
                panic!(
                    "nginx rejects the configuration ({}):\n{}{}\n--- nginx.conf ---\n{main}\n--- stream.conf ---\n{}",
                    launch.command_line(),
                    check.stderr,
                    crate::process::file_tail(&dir.path().join("test.log"), 20),
                    conf(addr)
                );
            }
            let mut process = launch.spawn();
            let ready = poll_until(START_TIMEOUT, Duration::from_millis(20), || {
                if !process.is_running() {
                    return Some(false);
                }
                // Bound by nginx (with SO_REUSEPORT, which this socket does not set) and the
                // workers are up.
                let bound = UdpSocket::bind(addr).is_err();
                let log = std::fs::read_to_string(process.log_path()).unwrap_or_default();
                (bound && log.matches("start worker process").count() >= WORKERS).then_some(true)
            });
            match ready {
                Some(true) => return Nginx { process, addr, dir },
                Some(false) if process.log_tail().contains("Address already in use") => {
                    last = process.failure("exited during start");
                }
                Some(false) => process.fail("exited during start"),
                None => process.fail(&format!(
                    "did not bind {addr} and start its workers within {START_TIMEOUT:?}"
                )),
            }
        }
        panic!("{last}\n(gave up after {START_ATTEMPTS} attempts with fresh ports)")
    }

    /// The UDP address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its directory (configuration, error log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process (log).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{chat_quic_conf_path, render_chat_quic};

    #[test]
    fn renders_the_documented_configuration() {
        let template = std::fs::read_to_string(chat_quic_conf_path()).expect("read chat-quic.conf");
        let nodes: Vec<SocketAddr> = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let listen: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let conf = render_chat_quic(&template, listen, &nodes).expect("render");
        assert!(
            conf.contains("listen 127.0.0.1:7000 udp reuseport;"),
            "{conf}"
        );
        assert!(
            conf.contains("server 127.0.0.1:7002 max_fails=1 fail_timeout=10s;"),
            "{conf}"
        );
        assert!(conf.contains("hash $remote_addr consistent;"), "{conf}");
        assert!(!conf.contains("10.0.0."), "{conf}");
        // One node too few or too many is a changed shape, not a silent success.
        assert!(render_chat_quic(&template, listen, &nodes[..2]).is_err());
        let four = [nodes.clone(), vec!["127.0.0.1:7004".parse().unwrap()]].concat();
        assert!(render_chat_quic(&template, listen, &four).is_err());
    }
}
