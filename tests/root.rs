//! Root tests against real namespaces. Each test re-runs itself inside
//! `integration/sandbox.sh` (its own network, mount and PID namespaces, fresh
//! /run and /etc/netns), so nothing reaches the real machine and nothing
//! outlives the test.
//!
//! They are `#[ignore]`d: a plain `cargo test` lists them as ignored. Run
//! them as root with `cargo test --test root -- --ignored`; without root they
//! fail, never pass.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nsvpn::lifecycle::teardown;
use nsvpn::names::{Names, VethAddrs};
use nsvpn::netlink::{Netlink, Route};
use nsvpn::paths;
use nsvpn::state::State;
use nsvpn::{dnsfiles, netns, util};

const IN_SANDBOX: &str = "NSVPN_TEST_IN_SANDBOX";

/// Runs the calling test again inside its own sandbox and checks it passed
/// there. Returns true when the caller is already inside and should run.
fn sandboxed(test: &str) -> bool {
    if std::env::var_os(IN_SANDBOX).is_some() {
        return true;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run `sudo cargo test --test root -- --ignored` (see README)"
    );
    let sandbox = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/sandbox.sh");
    let out = Command::new(sandbox)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_SANDBOX, "1")
        .output()
        .expect("cannot start the sandbox");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} failed inside its sandbox:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run inside its sandbox:\n{text}"
    );
    // Shown with --nocapture: what the test printed inside its sandbox.
    eprint!("{text}");
    false
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn namespaces_are_compatible_with_ip_netns() {
    if !sandboxed("namespaces_are_compatible_with_ip_netns") {
        return;
    }
    netns::create("nsvpn-t1").unwrap();
    assert!(netns::exists("nsvpn-t1"));
    assert!(sh("ip netns list").contains("nsvpn-t1"));
    assert!(sh("ip netns exec nsvpn-t1 ip -br link").starts_with("lo"));
    assert!(
        netns::create("nsvpn-t1").is_err(),
        "a second create must fail"
    );
    assert!(netns::processes_in("nsvpn-t1", &nsvpn::procs::Procs::read()).is_empty());
    netns::delete("nsvpn-t1").unwrap();
    netns::delete("nsvpn-t1").unwrap();
    assert!(!netns::exists("nsvpn-t1"));
    assert!(!sh("ip netns list").contains("nsvpn-t1"));
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn veth_addresses_and_routes_land_in_the_namespace_and_teardown_removes_them() {
    if !sandboxed("veth_addresses_and_routes_land_in_the_namespace_and_teardown_removes_them") {
        return;
    }
    let names = Names::for_profile("t2");
    let v = VethAddrs::for_profile("t2");
    netns::create(&names.netns).unwrap();
    let ns = netns::open(&names.netns).unwrap();
    util::block_on(async {
        let host = Netlink::here().unwrap();
        let inner = Netlink::in_netns(ns.as_fd()).unwrap();
        host.create_veth(
            &names.host_veth,
            &names.ns_veth,
            ns.as_fd(),
            nsvpn::names::LINK_GROUP,
        )
        .await
        .unwrap();
        let hv = host.link_by_name(&names.host_veth).await.unwrap().unwrap();
        host.add_address(hv.index, format!("{}/30", v.host).parse().unwrap())
            .await
            .unwrap();
        host.set_up(hv.index, None).await.unwrap();
        let nv = inner
            .link_by_name(&names.ns_veth)
            .await
            .unwrap()
            .expect("the peer was created inside");
        assert!(
            host.link_by_name(&names.ns_veth).await.unwrap().is_none(),
            "the peer must not be on the host"
        );
        inner
            .add_address(nv.index, format!("{}/30", v.namespace).parse().unwrap())
            .await
            .unwrap();
        inner.set_up(nv.index, Some(1400)).await.unwrap();
        inner
            .add_route(&Route::via_gateway(
                "10.20.0.0/16".parse().unwrap(),
                v.host.into(),
                nv.index,
            ))
            .await
            .unwrap();
        let routes = inner.routes().await.unwrap();
        assert!(
            routes
                .iter()
                .any(|r| r.dest.to_string() == "10.20.0.0/16" && r.gateway == Some(v.host.into())),
            "{routes:?}"
        );
        let host_routes = host.routes().await.unwrap();
        assert!(
            !host_routes
                .iter()
                .any(|r| r.dest.to_string() == "10.20.0.0/16"),
            "the host got the route"
        );
    })
    .unwrap();
    assert!(
        sh(&format!(
            "ip netns exec {} ping -c1 -W2 {}",
            names.netns, v.host
        ))
        .contains("1 received")
    );
    drop(ns);
    teardown::teardown(&names, false).unwrap();
    assert!(!teardown::any_trace(&names));
    assert!(!Path::new("/sys/class/net").join(&names.host_veth).exists());
}

fn write_profile(dir: &Path, name: &str, wg: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.conf")), wg).unwrap();
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!("[vpn]\nkind = \"wireguard\"\nconfig = \"{name}.conf\"\n"),
    )
    .unwrap();
}

fn key() -> String {
    let out = Command::new("wg")
        .arg("genkey")
        .output()
        .expect("wg (wireguard-tools) is needed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn a_failed_up_removes_everything_it_created() {
    if !sandboxed("a_failed_up_removes_everything_it_created") {
        return;
    }
    let dir = PathBuf::from("/run/t3-profiles");
    // An endpoint on the sandbox's loopback where nothing listens.
    write_profile(
        &dir,
        "t3",
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.99.0.2/32\n[Peer]\nPublicKey = {}\nEndpoint = 127.0.0.1:9\nAllowedIPs = 10.20.0.0/16\n",
            key(),
            key()
        ),
    );
    let profile = nsvpn::profile::Profile::load(&dir, "t3").unwrap();
    let opts = nsvpn::lifecycle::Options {
        timeout: Duration::from_secs(1),
    };
    let err = match nsvpn::lifecycle::up(&profile, &opts) {
        Ok(_) => panic!("up succeeded without a peer"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("no WireGuard handshake after 1.0 s") && err.contains("127.0.0.1:9"),
        "{err}"
    );
    let names = Names::for_profile("t3");
    assert!(!teardown::any_trace(&names), "up left traces behind");
    assert!(State::load("t3").is_none());
    assert!(!paths::netns_etc(&names.netns).exists());
    // A zombie that the sandbox's init has not reaped yet is not running.
    assert!(
        sh("ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 == \"wireguard-go\"'")
            .trim()
            .is_empty(),
        "wireguard-go still runs"
    );
    assert!(!sh("ip -br link").contains("nsv"), "a link is left");
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn exec_enters_the_namespace_and_drops_to_the_user() {
    if !sandboxed("exec_enters_the_namespace_and_drops_to_the_user") {
        return;
    }
    // A namespace made up by hand (no VPN needed to test exec itself), with
    // a link named as the tunnel: without one a profile is broken.
    let names = Names::for_profile("t4");
    netns::create(&names.netns).unwrap();
    sh(&format!(
        "ip -n {} link add {} type veth peer name nsvx-t4",
        names.netns, names.tunnel
    ));
    hand_made_state("t4").save().unwrap();
    dnsfiles::write(
        &names.netns,
        "t4",
        &dnsfiles::DnsConfig {
            servers: vec!["10.20.0.53".parse().unwrap()],
            search: vec![],
            hosts: vec![("db.t4".into(), "10.20.1.5".parse().unwrap())],
        },
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nsvpn"))
            .args(["--profiles", "/nonexistent", "exec", "t4", "--"])
            .args(args)
            .env("SUDO_UID", "65534")
            .env("SUDO_GID", "65534")
            .env("SUDO_USER", "nobody")
            .output()
            .unwrap()
    };
    let out = run(&[
        "sh",
        "-c",
        "cat /proc/self/status; cat /etc/resolv.conf; getent hosts db.t4; ls /sys/class/net; readlink /proc/self/ns/net; echo $NSVPN_PROFILE",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Uid:\t65534\t65534\t65534\t65534",
        "Gid:\t65534\t65534\t65534\t65534",
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "nameserver 10.20.0.53",
        "10.20.1.5       db.t4",
        "\nlo\n",
        "\nt4\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("eth0"),
        "host links are visible inside:\n{text}"
    );
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        !text.contains(host_ns.to_str().unwrap()),
        "the command ran in the host namespace"
    );
    assert_eq!(run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(run(&["no-such-command-t4"]).status.code(), Some(127));
    // The host's own files are untouched by the per-exec binds.
    assert!(
        !std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .contains("10.20.0.53")
    );
    teardown::teardown(&names, false).unwrap();
    assert!(!teardown::any_trace(&names));
}

// ---- nsvpn forward ----------------------------------------------------
//
// A profile's runtime made up by hand, as for exec above: the namespace, a
// link named as its tunnel (carrying 10.77.0.1, where a test server
// listens), a complete state and the /etc/netns files, whose hosts file
// alone knows db.internal. Its resolv.conf names 127.0.0.1 inside, where
// nothing answers: any other name fails at once.

const SERVER: &str = "10.77.0.1:5432";

/// Makes the profile `p` and starts its server; returns its names.
fn forward_profile(p: &str) -> Names {
    let names = Names::for_profile(p);
    netns::create(&names.netns).unwrap();
    let ns = &names.netns;
    for cmd in [
        format!("ip -n {ns} link set lo up"),
        format!(
            "ip -n {ns} link add {} type veth peer name nsvx-{p}",
            names.tunnel
        ),
        format!("ip -n {ns} address add 10.77.0.1/24 dev {}", names.tunnel),
        format!("ip -n {ns} link set nsvx-{p} up"),
        format!("ip -n {ns} link set {} up", names.tunnel),
    ] {
        let st = Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
        assert!(st.success(), "{cmd}");
    }
    hand_made_state(p).save().unwrap();
    dnsfiles::write(
        &names.netns,
        p,
        &dnsfiles::DnsConfig {
            servers: vec!["127.0.0.1".parse().unwrap()],
            search: vec![],
            hosts: vec![("db.internal".into(), "10.77.0.1".parse().unwrap())],
        },
    )
    .unwrap();
    start_server(&names, p);
    names
}

/// A server inside the profile, on 10.77.0.1:5432. It reads one line:
/// `who` gets the profile's name; `echo` gets back everything that follows
/// until the client half-closes, then `END <profile> <bytes>`; `sink` reads
/// everything, then answers the count; `source N` gets N bytes.
fn start_server(names: &Names, p: &str) {
    use std::io::{BufRead, BufReader, Write};
    let ns = netns::open(&names.netns).unwrap();
    let p = p.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = std::net::TcpListener::bind(SERVER).unwrap();
        tx.send(()).unwrap();
        for c in l.incoming() {
            let c = c.unwrap();
            let p = p.clone();
            // A client the test cuts ends its connection with an error: fine.
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut w = c.try_clone()?;
                let mut r = BufReader::with_capacity(1 << 20, c);
                let mut line = String::new();
                r.read_line(&mut line)?;
                let line = line.trim();
                if line == "who" {
                    writeln!(w, "{p}")?;
                } else if line == "echo" {
                    let n = std::io::copy(&mut r, &mut w)?;
                    writeln!(w, "END {p} {n}")?;
                } else if line == "sink" {
                    let n = std::io::copy(&mut r, &mut std::io::sink())?;
                    writeln!(w, "{n}")?;
                } else if let Some(n) = line.strip_prefix("source ") {
                    let mut left: usize = n.parse().unwrap();
                    let buf = vec![7u8; 1 << 20];
                    while left > 0 {
                        let k = left.min(buf.len());
                        w.write_all(&buf[..k])?;
                        left -= k;
                    }
                }
                Ok(())
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// A running `nsvpn forward`, as the sudo user nobody; killed if the test
/// fails before it ends it.
struct Forward {
    child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Forward {
    /// Starts it and waits for its "forwarding" lines; `Err` with its
    /// status and stderr if it exits instead.
    fn start(profile: &str, specs: &[&str]) -> Result<Forward, (Option<i32>, String)> {
        use std::io::{BufRead, BufReader, Read};
        let mut child = Command::new(env!("CARGO_BIN_EXE_nsvpn"))
            .args(["--profiles", "/nonexistent", "forward", profile])
            .args(specs)
            .env("SUDO_UID", "65534")
            .env("SUDO_GID", "65534")
            .env("SUDO_USER", "nobody")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = std::sync::mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut fwd = Forward { child, stderr };
        for _ in specs {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let status = fwd.child.wait().unwrap().code();
                return Err((status, fwd.stderr()));
            }
            assert!(line.starts_with("nsvpn: forwarding "), "{line}");
            assert!(
                line.ends_with(&format!(" inside profile {profile}\n")),
                "{line}"
            );
        }
        Ok(fwd)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stderr(&self) -> String {
        self.stderr
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default()
    }

    /// Sends `sig`; returns its exit status (within 5 s) and stderr.
    fn stop(mut self, sig: nix::sys::signal::Signal) -> (Option<i32>, String) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
        let t = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code(), self.stderr());
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "forward did not stop within 5 s of {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ask(port: u16, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    answer
}

fn sha256(data: &[u8]) -> String {
    use std::io::Write;
    let mut p = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    let data = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = p.wait_with_output().unwrap();
    w.join().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

fn listening(port: u16) -> bool {
    sh("ss -Hltn")
        .lines()
        .any(|l| l.contains(&format!(":{port} ")))
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn forward_reaches_each_profiles_server_by_a_name_only_it_knows() {
    use nix::sys::signal::Signal;
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;
    if !sandboxed("forward_reaches_each_profiles_server_by_a_name_only_it_knows") {
        return;
    }
    let fa = forward_profile("fa");
    let fb = forward_profile("fb");
    // The host knows neither the name nor the address.
    assert!(
        std::net::ToSocketAddrs::to_socket_addrs(&("db.internal", 1)).is_err(),
        "the host resolves db.internal"
    );
    assert!(std::net::TcpStream::connect(SERVER).is_err());

    // Two profiles, the same remote name and port, two local ports.
    let a = Forward::start("fa", &["15432:db.internal:5432"]).unwrap();
    let b = Forward::start("fb", &["[::1]:15433:db.internal:5432"]).unwrap();
    assert_eq!(ask(15432, b"who\n"), b"fa\n");
    let mut c = std::net::TcpStream::connect(("::1", 15433)).unwrap();
    c.write_all(b"who\n").unwrap();
    let mut who = String::new();
    c.read_to_string(&mut who).unwrap();
    assert_eq!(who, "fb\n");

    // A client that half-closes first gets the answer, exactly once.
    assert_eq!(ask(15432, b"echo\nhello"), b"helloEND fa 5\n");

    // 24 MiB both ways at once, intact.
    let data: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", 15432)).unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || {
            c.write_all(b"echo\n").unwrap();
            c.write_all(&data).unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    let trailer = format!("END fa {}\n", data.len());
    assert!(back.ends_with(trailer.as_bytes()), "no single trailer");
    back.truncate(back.len() - trailer.len());
    assert_eq!(sha256(&back), sha256(&data), "the data changed on the way");

    // The forward runs as the user, with no capability, inside the
    // profile's namespace; its mounts stay its own.
    let status = std::fs::read_to_string(format!("/proc/{}/status", a.pid())).unwrap();
    for want in [
        "Uid:\t65534\t65534\t65534\t65534",
        "Gid:\t65534\t65534\t65534\t65534",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(status.contains(want), "missing {want:?} in:\n{status}");
    }
    let inode = |p: String| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        inode(format!("/proc/{}/ns/net", a.pid())),
        inode(paths::netns(&fa.netns).display().to_string())
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains("nsvpn-etc")
    );

    // So `down` sees it inside and refuses.
    let down = Command::new(env!("CARGO_BIN_EXE_nsvpn"))
        .args(["--profiles", "/nonexistent", "down", "fa"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&down.stderr);
    assert!(
        !down.status.success() && text.contains("forward fa 15432:db.internal:5432"),
        "{text}"
    );

    // Ctrl-C: the listener closes, an open connection is cut, status 130.
    let mut open = std::net::TcpStream::connect(("127.0.0.1", 15432)).unwrap();
    open.write_all(b"echo\nstill here").unwrap();
    let mut first = [0u8; 10];
    open.read_exact(&mut first).unwrap();
    let (code, err) = a.stop(Signal::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(
        err,
        "nsvpn: forward stopped by SIGINT: listeners closed, 1 open connection cut\n"
    );
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("END"), "{rest:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", 15432)).is_err());
    assert!(!listening(15432));
    // SIGTERM (what `down --kill` sends) too, with nothing open: 143.
    let (code, err) = b.stop(Signal::SIGTERM);
    assert_eq!(code, Some(143), "{err}");
    assert!(!listening(15433));

    for names in [&fa, &fb] {
        teardown::teardown(names, false).unwrap();
        assert!(!teardown::any_trace(names));
    }
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn forward_fails_clearly_before_listening() {
    if !sandboxed("forward_fails_clearly_before_listening") {
        return;
    }
    let fa = forward_profile("fa");
    let fails = |specs: &[&str]| {
        let t = std::time::Instant::now();
        let (code, err) = match Forward::start("fa", specs) {
            Ok(_) => panic!("{specs:?} started"),
            Err(e) => e,
        };
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(code, Some(1), "{err}");
        err
    };

    // A port in use.
    let held = std::net::TcpListener::bind("127.0.0.1:15440").unwrap();
    let err = fails(&["15440:db.internal:5432"]);
    assert_eq!(
        err,
        "nsvpn: error: forward `15440:db.internal:5432`: 127.0.0.1:15440 is already in use \
         (`ss -ltnp 'sport = :15440'` shows by what); choose another local port\n"
    );
    drop(held);

    // A name only the host could know is unknown inside; the other spec's
    // port was not even opened.
    let err = fails(&["15441:db.internal:5432", "15442:nowhere.internal:80"]);
    assert!(
        err.starts_with(
            "nsvpn: error: forward `15442:nowhere.internal:80`: nowhere.internal does not \
             resolve inside profile fa ("
        ),
        "{err}"
    );
    assert!(!listening(15441) && !listening(15442));

    // Bad specs, all named at once.
    let err = fails(&["80:host", "70000:h:1", "x:1:h:2"]);
    assert!(err.starts_with("nsvpn: error: 3 problems with the forwards:\n  forward `80:host`: a forward is [BIND:]PORT:HOST:HOSTPORT"), "{err}");
    assert!(
        err.contains(
            "\n  forward `70000:h:1`: the local port 70000 is not a port number (1 to 65535)\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("\n  forward `x:1:h:2`: the listening address `x` is not an IP address"),
        "{err}"
    );

    // A profile that is not up.
    let err = Forward::start("nosuch", &["1:h:1"]).err().unwrap().1;
    assert!(err.starts_with("nsvpn: error: no profile"), "{err}");

    assert!(!sh("ss -Hltn").contains("127.0.0.1:154"));
    teardown::teardown(&fa, false).unwrap();
    assert!(!teardown::any_trace(&fa));
}

/// The state of a profile a test made by hand (its namespace and a link
/// named as its tunnel), complete, with no client process.
fn hand_made_state(p: &str) -> State {
    State {
        profile: p.into(),
        kind: nsvpn::backend::Kind::WireGuard,
        names: Names::for_profile(p),
        veth: VethAddrs::for_profile(p),
        pid: None,
        started: 0,
        complete: true,
        connected: None,
        overrides: Default::default(),
        parts: vec!["namespace".into(), "veth".into(), "tunnel".into()],
        backend: Default::default(),
    }
}

#[test]
#[ignore = "needs root; run with --ignored (README: the test command)"]
fn links_deleted_detached_are_gone_on_return_and_the_child_holds_nothing_of_ours() {
    if !sandboxed("links_deleted_detached_are_gone_on_return_and_the_child_holds_nothing_of_ours") {
        return;
    }
    use nsvpn::unlinking::{Unlinked, delete_detached};
    let names = Names::for_profile("t9");
    let v = VethAddrs::for_profile("t9");
    netns::create(&names.netns).unwrap();
    let ns = netns::open(&names.netns).unwrap();
    util::block_on(async {
        let host = Netlink::here().unwrap();
        host.create_veth(
            &names.host_veth,
            &names.ns_veth,
            ns.as_fd(),
            nsvpn::names::LINK_GROUP,
        )
        .await
        .unwrap();
        let hv = host.link_by_name(&names.host_veth).await.unwrap().unwrap();
        host.add_address(hv.index, format!("{}/30", v.host).parse().unwrap())
            .await
            .unwrap();
        host.set_up(hv.index, None).await.unwrap();
    })
    .unwrap();
    assert!(sh("ip -4 route").contains(&names.host_veth));
    // A pipe whose write end only this process holds: if the child (which
    // waits out the kernel's RCU barrier, 10-25 ms) kept a copy, a read
    // that does not wait would find a writer and no end.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
    let outcome = delete_detached(
        Some(ns.as_fd()),
        nsvpn::names::LINK_GROUP,
        &names.host_veth,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(outcome, Unlinked::Announced);
    // On return: the host's end, its address and its route are gone, and
    // so is the end inside (same batch).
    assert!(!netns::host_has_link(&names.host_veth));
    assert!(!sh("ip -4 addr; ip -4 route").contains(&names.host_veth));
    assert!(!netns::has_link(ns.as_fd(), &names.ns_veth).unwrap());
    drop(w);
    let mut buf = [0u8; 1];
    assert_eq!(
        nix::unistd::read(&r, &mut buf),
        Ok(0),
        "the pipe ended at once: the child kept no copy of it"
    );
    // Nothing is left to delete: the host has no such link any more.
    assert_eq!(
        delete_detached(
            Some(ns.as_fd()),
            nsvpn::names::LINK_GROUP,
            &names.host_veth,
            Duration::from_secs(5)
        )
        .unwrap(),
        Unlinked::NoHostLink
    );
    netns::delete(&names.netns).unwrap();
}
