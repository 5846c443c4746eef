//! The command line against hostile input, as a user (or an attacker's file) gives it: endless
//! files (`/dev/zero`) as keys, configs and scenarios; a key file created through a dangling
//! link; a `--wait` beyond what a clock holds; an instrument name with line breaks. Each is
//! refused with a message naming it, never a panic, an endless read or a split request.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Address space the binary may use: enough to run a command, far below what reading
/// `/dev/zero` whole would take (without a bound it fails with "out of memory" at this limit
/// instead of taking the machine's memory).
const ADDRESS_SPACE_BYTES_MAX: u64 = 2 << 30;
/// Longest a refused command may take.
const RUN_S_MAX: u64 = 60;

/// Runs the binary with `args` under [`ADDRESS_SPACE_BYTES_MAX`], killed after [`RUN_S_MAX`].
fn bulwark(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .args(args)
        .env_remove("BULWARK_API_KEY")
        .env_remove("BULWARK_API_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_BYTES_MAX,
                rlim_max: ADDRESS_SPACE_BYTES_MAX,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(RUN_S_MAX);
    while child.try_wait().expect("waiting").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bulwark {args:?} ran for more than {RUN_S_MAX} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bulwark-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Writes a fresh key file in `dir` and returns its path.
fn key_file(dir: &std::path::Path) -> String {
    let path = dir.join("good.key");
    let out = bulwark(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    path.to_str().unwrap().to_string()
}

#[test]
fn an_endless_key_config_or_scenario_file_is_refused_after_its_bound() {
    let dead = "http://127.0.0.1:9";
    let cases: [(&[&str], &str); 6] = [
        (&["keygen", "--show", "/dev/zero"], "larger than 1024 bytes"),
        (
            &["account", "--api", dead, "--key", "/dev/zero"],
            "larger than 1024 bytes",
        ),
        (
            &[
                "withdraw",
                "--api",
                dead,
                "--key",
                "/dev/zero",
                "--amount",
                "1",
            ],
            "larger than 1024 bytes",
        ),
        (
            &[
                "order",
                "place",
                "--api",
                dead,
                "--key",
                "/dev/zero",
                "--instrument",
                "BTC_USDC-PERPETUAL",
                "--side",
                "buy",
                "--qty",
                "1",
            ],
            "larger than 1024 bytes",
        ),
        (
            &["node", "--config", "/dev/zero"],
            "larger than 1048576 bytes",
        ),
        (&["simulate", "/dev/zero"], "larger than 4194304 bytes"),
    ];
    for (args, expected) in cases {
        let out = bulwark(args);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(message.contains("/dev/zero"), "{args:?}: {message}");
    }
}

#[test]
fn keygen_creates_a_private_file_and_never_writes_through_a_dangling_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("keygen");
    let fresh = dir.join("fresh.key");
    let out = bulwark(&["keygen", "--out", fresh.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");

    let target = dir.join("target.key");
    let link = dir.join("link.key");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = bulwark(&["keygen", "--out", link.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exists; not overwriting a key"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists(), "a key was written through the link");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wait_beyond_an_hour_is_refused_by_clap_before_anything_is_sent() {
    let dir = scratch("wait");
    let key = key_file(&dir);
    let dead = "http://127.0.0.1:9";
    let huge = "18446744073709551615";
    let place = [
        "order",
        "place",
        "--api",
        dead,
        "--key",
        &key,
        "--instrument",
        "BTC_USDC-PERPETUAL",
        "--side",
        "buy",
        "--qty",
        "1",
        "--price",
        "100",
        "--wait",
    ];
    let cancel = ["order", "cancel", "--api", dead, "--key", &key, "--wait"];
    let withdraw = [
        "withdraw", "--api", dead, "--key", &key, "--amount", "1", "--wait",
    ];
    for command in [&place[..], &cancel[..], &withdraw[..]] {
        for wait in [huge, "3601"] {
            let out = bulwark(&[command, &[wait]].concat());
            let message = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command:?} {wait}: {message}");
            assert!(
                message.contains(&format!("invalid value '{wait}' for '--wait <WAIT>'"))
                    && message.contains("0..=3600"),
                "{command:?} {wait}: {message}"
            );
        }
        // An hour is allowed: the command goes on to the (dead) API.
        let out = bulwark(&[command, &["3600"]].concat());
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {message}");
        assert!(message.contains("connecting to"), "{command:?}: {message}");
    }
    // `feed --seconds` too: its deadline panicked on an instant past what the clock holds.
    let out = bulwark(&[
        "feed",
        "deribit",
        "--url",
        "ws://127.0.0.1:9",
        "--seconds",
        huge,
    ]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "feed: {message}");
    assert!(message.contains("--seconds"), "feed: {message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn book_puts_a_hostile_instrument_name_into_the_request_percent_encoded() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(RUN_S_MAX)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let body = r#"{"code":"instrument_name_invalid","error":"no such name"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8_lossy(&head).to_string()
    });
    let hostile = "BTC HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /evil";
    let out = bulwark(&["book", hostile, "--api", &api]);
    let head = server.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("instrument_name_invalid"),
        "{}",
        stderr(&out)
    );
    assert!(
        head.starts_with(
            "GET /book/BTC%20HTTP%2F1%2E1%0D%0AX-Injected%3A%20yes%0D%0A%0D%0AGET%20%2Fevil?depth=10 HTTP/1.1\r\n"
        ),
        "{head:?}"
    );
    assert!(!head.contains("X-Injected: yes"), "{head:?}");
}
