//! The protocol end to end: handshake, access, pipelining, shutdown, hostile bytes.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::proto::{self, Hello, Welcome};
use super::*;
use crate::{Node, NodeConfig};

pub(super) const TOKEN: &str = "secret-token";

pub(super) async fn start(config: ServerConfig) -> Server {
    start_with(NodeConfig::default(), config).await
}

pub(super) async fn start_with(node: NodeConfig, config: ServerConfig) -> Server {
    let node = Node::open(node).unwrap();
    let config = ServerConfig {
        node_id: "node-1".into(),
        admin_token: Some(TOKEN.into()),
        ..config
    };
    serve(node, "127.0.0.1:0", config).await.unwrap()
}

pub(super) async fn connect(server: &Server, token: Option<&str>) -> Result<Client, NetError> {
    let config = ClientConfig {
        admin_token: token.map(str::to_owned),
        ..ClientConfig::default()
    };
    Client::connect(&server.local_addr().to_string(), config).await
}

#[tokio::test]
async fn ping_schema_and_the_handshake_says_who_is_admin() {
    let server = start(ServerConfig::default()).await;
    let public = connect(&server, None).await.unwrap();
    assert_eq!(public.node_id(), "node-1");
    assert!(!public.is_admin());
    public.ping().await.unwrap();
    assert!(public.schema().await.unwrap().is_empty());
    // The node's figures, for `interstice node show`; a node without platform authorities
    // has only its own.
    let stats = public.stats().await.unwrap();
    let labels: Vec<&str> = stats.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "invocations",
            "windows",
            "workers",
            "uptime",
            "log fsyncs",
            "log fsyncs per second (since start)",
            "commits per fsync"
        ]
    );
    // A memory-only node never fsyncs.
    let figure = |label: &str| {
        stats
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(figure("log fsyncs").as_deref(), Some("0"));
    assert_eq!(
        figure("log fsyncs per second (since start)").as_deref(),
        Some("0.0")
    );
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    assert!(admin.is_admin());
    let wrong = connect(&server, Some("nope")).await.err().unwrap();
    assert!(wrong.to_string().contains("wrong admin token"), "{wrong}");
    server.shutdown().await;
}

#[tokio::test]
async fn publishing_needs_the_token_unless_anonymous_publish_is_allowed() {
    let server = start(ServerConfig::default()).await;
    let public = connect(&server, None).await.unwrap();
    let err = public.publish(b"\0asm".to_vec()).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unauthorized), "{err}");
    let err = public.remove("hello").await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unauthorized), "{err}");
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    let err = admin.publish(b"not wasm".to_vec()).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused), "{err}");
    let err = admin.remove("hello").await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NotFound), "{err}");
    server.shutdown().await;

    let anonymous = NodeConfig {
        policy: crate::AccessPolicy {
            allow_anonymous_publish: true,
        },
        ..NodeConfig::default()
    };
    let server = start_with(anonymous, ServerConfig::default()).await;
    let public = connect(&server, None).await.unwrap();
    let err = public.publish(b"not wasm".to_vec()).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Refused), "{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_manager_takes_over_publish_and_remove_for_clients_without_the_token() {
    use crate::testing::{manager_module, module, probe_schema};
    let node = Node::open(NodeConfig::default()).unwrap();
    node.install(&manager_module("gate")).unwrap();
    let config = ServerConfig {
        node_id: "node-1".into(),
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    let server = serve(node.clone(), "127.0.0.1:0", config).await.unwrap();
    let probe = module(
        &probe_schema(&[("ok", None)]),
        interstice_abi::ABI_VERSION,
        &["(i32.const 0)"],
    );
    // The manager lets anyone publish...
    let public = connect(&server, None).await.unwrap();
    let report = public.publish(probe).await.unwrap();
    assert!(
        matches!(report, PublishReport::Installed { .. }),
        "{report:?}"
    );
    // ...and nobody remove, naming itself.
    let err = public.remove("probe").await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(err.to_string().contains("module `gate`"), "{err}");
    assert!(err.to_string().contains("remove `probe`"), "{err}");
    // The admin token still works: the owner cannot be locked out.
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    admin.remove("probe").await.unwrap();
    server.shutdown().await;
}

#[test]
fn a_module_manager_must_answer_authorize() {
    let mut schema = crate::testing::probe_schema(&[("ok", None)]);
    schema.authorities = vec![interstice_abi::Authority::Module];
    let wasm = crate::testing::module(&schema, interstice_abi::ABI_VERSION, &["(i32.const 0)"]);
    let err = Node::open(NodeConfig::default())
        .unwrap()
        .install(&wasm)
        .unwrap_err();
    assert!(
        err.to_string().contains("fn authorize(ctx: QueryContext"),
        "{err}"
    );
}

#[tokio::test]
async fn pipelined_requests_each_get_their_own_answer() {
    let server = start(ServerConfig::default()).await;
    let client = connect(&server, None).await.unwrap();
    let calls = (0..200).map(|i| {
        let client = client.clone();
        async move {
            if i % 2 == 0 {
                client.ping().await.map(|_| ())
            } else {
                client
                    .call_reducer("missing", "r", Vec::new())
                    .await
                    .map(|_| ())
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, result) in results.into_iter().enumerate() {
        if i % 2 == 0 {
            result.unwrap();
        } else {
            assert_eq!(result.unwrap_err().remote_kind(), Some(ErrorKind::NotFound));
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn without_busy_poll_every_request_is_answered_all_the_same() {
    let server = start(ServerConfig {
        busy_poll: Duration::ZERO,
        ..ServerConfig::default()
    })
    .await;
    let client = connect(&server, None).await.unwrap();
    client.ping().await.unwrap();
    let pings = (0..100).map(|_| client.ping());
    for result in futures_util::future::join_all(pings).await {
        result.unwrap();
    }
    server.shutdown().await;
}

/// A client that sends and never reads fills the socket until the worker blocks writing;
/// shutting down must not wait for it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_a_client_that_stopped_reading() {
    let server = start(ServerConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let hello = proto::encode_handshake(&Hello {
        kind: ClientKind::Cli,
        node_id: None,
        expect_node: None,
        admin_token: Some(TOKEN.into()),
    });
    let mut bytes = (hello.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&hello);
    // Each answer names the missing module: 20 000 of them are far more than the socket
    // buffers hold.
    let request = proto::encode(&proto::RequestFrame {
        id: 1,
        request: Request::Remove {
            module: "m".repeat(2000),
        },
    });
    for _ in 0..20_000 {
        bytes.extend_from_slice(&(request.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&request);
    }
    // Written from a task: once both directions are full, this write blocks too.
    let writer = tokio::spawn(async move {
        let _ = stream.write_all(&bytes).await;
        stream
    });
    // Let the server read until its answers back up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A hang guard, not a timing: shutdown gives stalled writers one second.
    tokio::time::timeout(Duration::from_secs(60), server.shutdown())
        .await
        .expect("shutdown waited for a client that stopped reading");
    drop(writer.await);
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_except_the_admins() {
    let server = start(ServerConfig {
        max_anonymous_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let first = connect(&server, None).await.unwrap();
    let second = connect(&server, None).await.unwrap();
    let err = connect(&server, None).await.err().unwrap();
    assert!(
        err.to_string().contains("serves 2 anonymous connections"),
        "{err}"
    );
    let admin = connect(&server, Some(TOKEN)).await.unwrap();
    admin.ping().await.unwrap();
    drop(admin);
    // A closed connection gives its place back (once the node has seen it close).
    drop(first);
    let third = loop {
        match connect(&server, None).await {
            Ok(client) => break client,
            Err(e) => assert!(
                e.to_string().contains("serves 2 anonymous connections"),
                "{e}"
            ),
        }
        tokio::task::yield_now().await;
    };
    third.ping().await.unwrap();
    second.ping().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn a_version_mismatch_is_named_on_both_sides() {
    let server = start(ServerConfig::default()).await;
    let stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
    let mut hello = proto::encode_handshake(&Hello {
        kind: ClientKind::Cli,
        node_id: None,
        expect_node: None,
        admin_token: None,
    });
    hello[4] = 99;
    framed.send(Bytes::from(hello)).await.unwrap();
    let answer = framed.next().await.unwrap().unwrap();
    match proto::decode_handshake::<Welcome>(&answer).unwrap() {
        Welcome::Refused { reason } => {
            assert!(reason.contains("protocol version 99"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_wrong_node_at_an_address_is_refused() {
    let server = start(ServerConfig::default()).await;
    let config = ClientConfig {
        expect_node: Some("node-2".into()),
        ..ClientConfig::default()
    };
    let err = Client::connect(&server.local_addr().to_string(), config)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("this is node node-1"), "{err}");
    server.shutdown().await;
}

/// Raw bytes on a fresh connection: the server must close it and keep serving others.
async fn hostile(server: &Server, handshake_first: bool, bytes: &[u8]) {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    if handshake_first {
        let hello = proto::encode_handshake(&Hello {
            kind: ClientKind::Cli,
            node_id: None,
            expect_node: None,
            admin_token: None,
        });
        stream
            .write_all(&(hello.len() as u32).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&hello).await.unwrap();
    }
    stream.write_all(bytes).await.unwrap();
    // Half-close: a truncated frame then ends the stream mid-frame.
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest).await;
    let client = connect(server, None).await.unwrap();
    client.ping().await.unwrap();
}

#[tokio::test]
async fn garbage_oversized_and_truncated_frames_close_only_their_connection() {
    let server = start(ServerConfig {
        max_frame_length: 1024,
        ..ServerConfig::default()
    })
    .await;
    let bystander = connect(&server, None).await.unwrap();
    for handshake_first in [false, true] {
        // Garbage inside a well-formed frame.
        hostile(
            &server,
            handshake_first,
            &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
        )
        .await;
        // A length prefix far over the limit.
        hostile(&server, handshake_first, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await;
        // A frame that announces 100 bytes and ends after 3.
        hostile(&server, handshake_first, &[0, 0, 0, 100, 1, 2, 3]).await;
        // Not even a length prefix.
        hostile(&server, handshake_first, b"GET / HTTP/1.1\r\n\r\n").await;
    }
    bystander.ping().await.unwrap();
    server.shutdown().await;
}
