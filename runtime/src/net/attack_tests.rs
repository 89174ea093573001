//! What an outsider can make the server hold: each test makes one attack of
//! docs/RELIABILITY.md ("Network") and checks the bound that stops it. Timeouts here are short
//! so that the tests end; the `timeout` around each wait is a hang guard, not a timing.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::proto::{self, Hello};
use super::tests::{TOKEN, connect, start};
use super::*;

/// Fails the test when `what` does not happen within a minute.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn hello(kind: ClientKind, node_id: Option<&str>, token: Option<&str>) -> Vec<u8> {
    frame(&proto::encode_handshake(&Hello {
        kind,
        node_id: node_id.map(str::to_owned),
        expect_node: None,
        admin_token: token.map(str::to_owned),
    }))
}

/// A raw connection past the handshake, as a client without the token.
async fn raw_session(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(&hello(ClientKind::Cli, None, None))
        .await
        .unwrap();
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.unwrap();
    let mut welcome = vec![0; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut welcome).await.unwrap();
    match proto::decode_handshake::<proto::Welcome>(&welcome).unwrap() {
        proto::Welcome::Accepted { .. } => stream,
        refused => panic!("{refused:?}"),
    }
}

/// Reads until the server closes the connection.
async fn closed_by_server(what: &str, stream: &mut TcpStream) {
    let mut rest = Vec::new();
    within(what, stream.read_to_end(&mut rest))
        .await
        .unwrap_or_default();
}

fn quiet(token: Option<&str>) -> ClientConfig {
    ClientConfig {
        admin_token: token.map(str::to_owned),
        keep_alive: None,
        ..ClientConfig::default()
    }
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_after_the_handshake_timeout() {
    let server = start(ServerConfig {
        handshake_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    closed_by_server("the handshake timeout", &mut silent).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_frame_announced_before_the_handshake_closes_the_connection_at_once() {
    // Long enough that only the handshake's own frame limit can close it in the test's time.
    let server = start(ServerConfig {
        handshake_timeout: Duration::from_secs(600),
        ..ServerConfig::default()
    })
    .await;
    let mut attacker = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut bytes = (64u32 << 20).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0; 10]);
    attacker.write_all(&bytes).await.unwrap();
    closed_by_server("a 64 MiB handshake frame to be refused", &mut attacker).await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_oldest_connections_in_their_handshake_give_way_to_new_ones() {
    let server = start(ServerConfig {
        handshake_timeout: Duration::from_secs(600),
        max_handshakes: 4,
        ..ServerConfig::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    // A client that completes its handshake gets in however many linger...
    let client = connect(&server, None).await.unwrap();
    client.ping().await.unwrap();
    // ...and the oldest lingering one was closed to make room.
    closed_by_server("the oldest handshake to give way", &mut silent[0]).await;
    server.shutdown().await;
}

#[tokio::test]
async fn anonymous_clients_cannot_take_the_places_of_the_admin_and_of_other_nodes() {
    let server = start(ServerConfig {
        max_anonymous_connections: 3,
        max_peer_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let addr = server.local_addr().to_string();
    let mut anonymous = Vec::new();
    for _ in 0..3 {
        anonymous.push(Client::connect(&addr, quiet(None)).await.unwrap());
    }
    let err = Client::connect(&addr, quiet(None)).await.err().unwrap();
    assert!(
        err.to_string().contains("serves 3 anonymous connections"),
        "{err}"
    );
    let admin = Client::connect(&addr, quiet(Some(TOKEN))).await.unwrap();
    admin.ping().await.unwrap();
    let as_node = |id: &str| ClientConfig {
        kind: ClientKind::Node,
        node_id: Some(id.to_owned()),
        ..quiet(None)
    };
    let peer = Client::connect(&addr, as_node("n1")).await.unwrap();
    peer.ping().await.unwrap();
    // Other nodes have their own limit.
    let err = Client::connect(&addr, as_node("n2")).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("serves 1 node-to-node connections"),
        "{err}"
    );
    for client in &anonymous {
        client.ping().await.unwrap();
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_a_pinging_or_subscribed_one_stays() {
    use crate::testing::{module, probe_schema};
    let idle_timeout = Duration::from_millis(500);
    let server = start(ServerConfig {
        idle_timeout,
        ..ServerConfig::default()
    })
    .await;
    let addr = server.local_addr().to_string();
    let admin = Client::connect(&addr, quiet(Some(TOKEN))).await.unwrap();
    let probe = module(
        &probe_schema(&[("ok", None)]),
        interstice_abi::ABI_VERSION,
        &["(i32.const 0)"],
    );
    admin.publish(probe).await.unwrap();
    let idle = Client::connect(&addr, quiet(None)).await.unwrap();
    let pinging = Client::connect(
        &addr,
        ClientConfig {
            keep_alive: Some(idle_timeout / 5),
            ..quiet(None)
        },
    )
    .await
    .unwrap();
    // Private tables are open to the admin.
    let subscribed = Client::connect(&addr, quiet(Some(TOKEN))).await.unwrap();
    subscribed
        .subscribe("probe", "items", interstice_abi::TableEvent::Insert, None)
        .await
        .unwrap();

    within("the idle connection to close", idle.closed()).await;
    // Three idle periods later, the others are still served.
    tokio::time::sleep(idle_timeout * 3).await;
    pinging.ping().await.unwrap();
    subscribed.ping().await.unwrap();
    let err = idle.ping().await.unwrap_err();
    assert!(matches!(err, NetError::Closed), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_frame_that_stops_halfway_is_closed_after_the_frame_timeout() {
    let server = start(ServerConfig {
        frame_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    })
    .await;
    let mut slow = raw_session(&server).await;
    // A header announcing 1000 bytes, and three of them.
    slow.write_all(&[0, 0, 3, 232, 1, 2, 3]).await.unwrap();
    closed_by_server("the frame timeout", &mut slow).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_loses_its_connection_and_place() {
    let server = start(ServerConfig {
        write_timeout: Duration::from_millis(100),
        max_anonymous_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let mut flood = raw_session(&server).await;
    // Each answer names the missing module: far more than the socket buffers hold.
    let request = proto::encode(&proto::RequestFrame {
        id: 1,
        request: Request::CallQuery {
            module: "m".repeat(2000),
            query: "q".into(),
            args: Vec::new(),
        },
    });
    let mut bytes = Vec::new();
    for _ in 0..20_000 {
        bytes.extend_from_slice(&frame(&request));
    }
    // Written from a task: once the server stops reading, this write blocks until it closes.
    let writer = tokio::spawn(async move {
        let _ = flood.write_all(&bytes).await;
        flood
    });
    // Its place comes free once the server gave up writing to it.
    let client = within("the place of the client that does not read", async {
        loop {
            match Client::connect(&server.local_addr().to_string(), quiet(None)).await {
                Ok(client) => break client,
                Err(e) => assert!(e.to_string().contains("serves 1 anonymous"), "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    client.ping().await.unwrap();
    drop(writer.await);
    server.shutdown().await;
}

#[tokio::test]
async fn subscriptions_per_connection_are_limited() {
    use crate::testing::{module, probe_schema};
    let server = start(ServerConfig {
        max_subscriptions: 2,
        ..ServerConfig::default()
    })
    .await;
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    let probe = module(
        &probe_schema(&[("ok", None)]),
        interstice_abi::ABI_VERSION,
        &["(i32.const 0)"],
    );
    admin.publish(probe).await.unwrap();
    let insert = interstice_abi::TableEvent::Insert;
    for _ in 0..2 {
        admin
            .subscribe("probe", "items", insert, None)
            .await
            .unwrap();
    }
    let err = admin
        .subscribe("probe", "items", insert, None)
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Limit), "{err}");
    assert!(err.to_string().contains("holds 2 subscriptions"), "{err}");
    // Another connection has its own.
    let other = connect(&server, Some(TOKEN)).await.unwrap();
    other
        .subscribe("probe", "items", insert, None)
        .await
        .unwrap();
    admin.ping().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_over_the_frame_limit_is_named_on_both_sides() {
    use crate::testing::{module, probe_schema};
    let schema = probe_schema(&[("ok", None)]);
    let probe = module(&schema, interstice_abi::ABI_VERSION, &["(i32.const 0)"]);
    let node = crate::Node::open(crate::NodeConfig::default()).unwrap();
    node.install(&probe).unwrap();
    // The admin's schema answer carries the whole schema: twice the limit.
    let limit = schema.to_bytes().len() / 2;
    let config = ServerConfig {
        admin_token: Some(TOKEN.into()),
        max_frame_length: limit,
        ..ServerConfig::default()
    };
    let server = serve(node, "127.0.0.1:0", config).await.unwrap();
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    // The node refuses to send it, and says so...
    let err = admin.schema().await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Limit), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("over the node's frame limit of {limit} bytes")),
        "{err}"
    );
    // ...and a request over its limit is refused before it leaves; the connection stays.
    let err = admin.publish(probe).await.unwrap_err();
    assert!(
        matches!(err, NetError::RequestTooLarge { max, .. } if max == limit),
        "{err}"
    );
    admin.ping().await.unwrap();

    // The client refuses an answer over its own limit, naming both sizes.
    let small = ClientConfig {
        max_frame_length: 64,
        ..quiet(Some(TOKEN))
    };
    let client = Client::connect(&server.local_addr().to_string(), small)
        .await
        .unwrap();
    let err = client.schema().await.unwrap_err();
    assert!(
        matches!(err, NetError::AnswerTooLarge { max: 64, len } if len > 64),
        "{err}"
    );
    assert!(err.to_string().contains("frame limit of 64 bytes"), "{err}");
    server.shutdown().await;
}
