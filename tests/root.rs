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
    assert!(netns::processes_in("nsvpn-t1").is_empty());
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
        host.create_veth(&names.host_veth, &names.ns_veth, ns.as_fd())
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
            .add_route(&Route {
                dest: "10.20.0.0/16".parse().unwrap(),
                link: Some(nv.index),
                gateway: Some(v.host.into()),
                link_scope: false,
            })
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
    State {
        profile: "t4".into(),
        kind: nsvpn::backend::Kind::WireGuard,
        names: names.clone(),
        veth: VethAddrs::for_profile("t4"),
        pid: None,
        started: 0,
        complete: true,
        overrides: Default::default(),
        parts: vec![],
        backend: Default::default(),
    }
    .save()
    .unwrap();
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
