//! The access log of a real `rampart serve`: written by its own thread, yet prompt, and
//! drained at shutdown (README "Logging").

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

use crate::cli::{rampart, wait_bounded};

fn is_health_access_line(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| {
        v["target"] == "rampart::access" && v["route"] == "/health" && v["status"] == 200
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_line_is_written_while_the_server_runs_and_none_is_lost_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("RAMPART_LISTEN", "127.0.0.1:0"),
        ("RAMPART_RATE_LIMIT_GLOBAL", "1000000/1h"),
    ];
    let mut child = rampart(dir.path(), &["serve"], &vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        if line.contains("rampart is serving") {
            let v: Value = serde_json::from_str(&line).unwrap();
            break v["listen"].as_str().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/health");

    // One request: its line arrives while the server keeps running (not at exit).
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let first = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the access line was not written while the server ran");
        if is_health_access_line(&line) {
            break line;
        }
    };
    assert!(first.contains("request_id"), "{first}");

    // A burst, then SIGTERM at once: every line still reaches stdout.
    const BURST: usize = 2_000;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..BURST / 16 {
                assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::block_in_place(|| wait_bounded(&mut child, Duration::from_secs(35)));
    assert!(exit.success());
    // The reader thread ends at EOF, which closes the channel.
    let written = rx.iter().filter(|l| is_health_access_line(l)).count();
    assert_eq!(written, BURST, "access lines lost at shutdown");
}
