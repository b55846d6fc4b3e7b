//! An axum + socketioxide server that is a node of a Node socket.io cluster through
//! `SioAdapter`: Node servers with `@socket.io/redis-adapter` (official or sioadapter's) on the
//! same Redis and key share its broadcasts, rooms and sockets.
//!
//! Every client joins the room `rust-room`. Clients can ask the server, by event, to act on the
//! whole cluster (what test/socketioxide.test.js does):
//! - `broadcast` `{event, arg | bytes, to?, except?, volatile?}`: `io.to(to).except(except).emit(event, arg)`
//!   (`bytes`, an array of numbers, is sent as binary);
//! - `fetch` → ack with the ids of every socket of the cluster (`io.fetch_sockets()`);
//! - `emit-to` `{id, event, arg}`: emits to one fetched socket, wherever it is;
//! - `fetch-in` `{in}` → ack with the ids of the cluster's sockets in room(s) `in`;
//! - `remote-socket` `{id, op, room?, event?, arg?}` → ack with the result of `op` on a fetched
//!   socket: `rooms` (its rooms), `join` / `leave` `room`, `emit-with-ack` `event` `arg` (its
//!   ack's arguments), `disconnect`;
//! - `join` / `leave` `{in?, room}`: `io.within(in).join(room)` / `.leave(room)`;
//! - `disconnect` `{in}`: `io.within(in).disconnect()`;
//! - `rooms` → ack with `io.rooms()`;
//! - `server-side-emit` `{event, args}` → ack with the other servers' acks
//!   (`serverSideEmitWithAck`);
//! - `broadcast-with-ack` `{event, arg, to?, except?, timeoutMs?}` → ack with `{acks, errors, ms}`:
//!   `io.to(to).except(except).timeout(timeoutMs).emit_with_ack(event, arg)`, every client's ack
//!   of the cluster (the arguments), how many clients did not answer in time, and how long it took.
//!
//! It answers the other servers' `serverSideEmit` with `"pong-from-rust"`, and prints
//! `SERVER_SIDE <event> <args as JSON>` for each.
//!
//! `cargo run --release -p sioadapter-socketioxide --example socketioxide_node -- [redis-url] [key] [port] [protocol]`
//! prints `LISTENING <port>` once it serves. `protocol` is `classic` (the default: Node's
//! `createAdapter`, `key` its `key`) or `sharded` (Node's `createShardedAdapter` with
//! `subscriptionMode: "static"`, `key` its `channelPrefix`).

use futures_util::StreamExt;
use serde_json::Value;
use sioadapter::AdapterConfig;
use sioadapter_socketioxide::{SioAdapter, SioAdapterCtr};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::operators::BroadcastOperators;
use socketioxide::SocketIo;

/// `op` narrowed to the rooms in `field` of `request` (a string or an array), if any.
fn narrowed<A: Adapter>(op: BroadcastOperators<A>, request: &Value, field: &str, except: bool) -> BroadcastOperators<A> {
    let rooms: Vec<String> = match &request[field] {
        Value::String(room) => vec![room.clone()],
        Value::Array(rooms) => rooms.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect(),
        _ => return op,
    };
    if except {
        op.except(rooms)
    } else {
        op.within(rooms)
    }
}

/// Every socket of the namespace on every server, narrowed as `request` says.
fn selected<A: Adapter>(io: &SocketIo<A>, request: &Value, field: &str) -> BroadcastOperators<A> {
    narrowed(narrowed(io.broadcast(), request, field, false), request, "except", true)
}

async fn on_broadcast<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>) {
    let op = selected(&io, &request, "to");
    let op = if request["volatile"] == true { op.volatile() } else { op };
    let event = request["event"].as_str().unwrap_or("event").to_owned();
    // `bytes` (an array of numbers) is sent as binary.
    let sent = match request["bytes"].as_array() {
        Some(bytes) => op.emit(&event, &rmpv::Value::Binary(bytes.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect())).await,
        None => op.emit(&event, &request["arg"]).await,
    };
    if let Err(err) = sent {
        eprintln!("broadcast: {err}");
    }
}

/// The ids of the sockets `op` selects on every server (an error as the only item).
async fn fetched_ids<A: Adapter>(op: BroadcastOperators<A>) -> Vec<String> {
    match op.fetch_sockets().await {
        Ok(sockets) => sockets.iter().map(|s| s.data().id.to_string()).collect(),
        Err(err) => vec![format!("error: {err}")],
    }
}

async fn on_fetch<A: Adapter>(io: SocketIo<A>, ack: AckSender<A>) {
    ack.send(&fetched_ids(io.broadcast()).await).ok();
}

async fn on_emit_to<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    // A fetched socket is addressed by the id fetch_sockets gave it.
    let sockets = io.fetch_sockets().await.unwrap_or_default();
    let id = request["id"].as_str().unwrap_or_default();
    let found = sockets.into_iter().find(|s| s.data().id.as_str() == id);
    let sent = match found {
        Some(socket) => socket.emit(request["event"].as_str().unwrap_or("event"), &request["arg"]).await.is_ok(),
        None => false,
    };
    ack.send(&sent).ok();
}

async fn on_fetch_in<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    ack.send(&fetched_ids(selected(&io, &request, "in")).await).ok();
}

async fn on_remote_socket<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    let sockets = io.fetch_sockets().await.unwrap_or_default();
    let id = request["id"].as_str().unwrap_or_default();
    let Some(socket) = sockets.into_iter().find(|s| s.data().id.as_str() == id) else {
        ack.send(&Value::from(format!("no socket {id}"))).ok();
        return;
    };
    let room = request["room"].as_str().unwrap_or_default().to_owned();
    let event = request["event"].as_str().unwrap_or("event").to_owned();
    let answer = match request["op"].as_str().unwrap_or_default() {
        "rooms" => socket.rooms().await.map(|rooms| Value::from(rooms.iter().map(ToString::to_string).collect::<Vec<_>>())).map_err(|e| e.to_string()),
        "join" => socket.join(room).await.map(|()| Value::Bool(true)).map_err(|e| e.to_string()),
        "leave" => socket.leave(room).await.map(|()| Value::Bool(true)).map_err(|e| e.to_string()),
        "emit-with-ack" => match socket.emit_with_ack::<_, Value>(&event, &request["arg"]).await {
            Ok(stream) => Ok(Value::from(stream.filter_map(|(_, r)| async move { r.ok() }).collect::<Vec<Value>>().await)),
            Err(err) => Err(err.to_string()),
        },
        "disconnect" => socket.disconnect().await.map(|()| Value::Bool(true)).map_err(|e| e.to_string()),
        other => Err(format!("unknown op {other}")),
    };
    ack.send(&answer.unwrap_or_else(|err| Value::from(format!("error: {err}")))).ok();
}

async fn on_join<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    let room = request["room"].as_str().unwrap_or_default().to_owned();
    let done = selected(&io, &request, "in").join(room).await.is_ok();
    ack.send(&done).ok();
}

async fn on_leave<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    let room = request["room"].as_str().unwrap_or_default().to_owned();
    let done = selected(&io, &request, "in").leave(room).await.is_ok();
    ack.send(&done).ok();
}

async fn on_disconnect_sockets<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    let done = selected(&io, &request, "in").disconnect().await.is_ok();
    ack.send(&done).ok();
}

async fn on_rooms<A: Adapter>(io: SocketIo<A>, ack: AckSender<A>) {
    let rooms: Vec<String> = io.rooms().await.map(|rooms| rooms.iter().map(ToString::to_string).collect()).unwrap_or_default();
    ack.send(&rooms).ok();
}

async fn on_broadcast_with_ack<A: Adapter>(io: SocketIo<A>, Data(request): Data<Value>, ack: AckSender<A>) {
    let timeout = std::time::Duration::from_millis(request["timeoutMs"].as_u64().unwrap_or(3000));
    let event = request["event"].as_str().unwrap_or("event").to_owned();
    let started = std::time::Instant::now();
    let answer = match selected(&io, &request, "to").timeout(timeout).emit_with_ack::<_, Value>(&event, &request["arg"]).await {
        Ok(stream) => {
            let results: Vec<_> = stream.map(|(_, result)| result).collect().await;
            let acks: Vec<&Value> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            serde_json::json!({"acks": acks, "errors": results.len() - acks.len(), "ms": started.elapsed().as_millis() as u64})
        }
        Err(err) => serde_json::json!({"error": err.to_string()}),
    };
    ack.send(&answer).ok();
}

/// The shared adapter state, for server-side emits.
static STATE: std::sync::OnceLock<SioAdapterCtr> = std::sync::OnceLock::new();

async fn on_server_side_emit<A: Adapter>(Data(request): Data<Value>, ack: AckSender<A>) {
    let (Some(state), Some(event)) = (STATE.get(), request["event"].as_str()) else { return };
    let args = request["args"].as_array().cloned().unwrap_or_default();
    let acks = match state.server_side_emit_with_ack("/", event, &args).await {
        Ok(acks) => Value::Array(acks),
        Err(err) => Value::String(format!("error: {err}")),
    };
    ack.send(&acks).ok();
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.join("rust-room");
    socket.on("broadcast", on_broadcast);
    socket.on("fetch", on_fetch);
    socket.on("emit-to", on_emit_to);
    socket.on("fetch-in", on_fetch_in);
    socket.on("remote-socket", on_remote_socket);
    socket.on("join", on_join);
    socket.on("leave", on_leave);
    socket.on("disconnect-sockets", on_disconnect_sockets);
    socket.on("rooms", on_rooms);
    socket.on("server-side-emit", on_server_side_emit);
    socket.on("broadcast-with-ack", on_broadcast_with_ack);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &'static str| args.get(i).map_or(default, String::as_str);
    let (url, key, port) = (arg(0, "redis://127.0.0.1:6379"), arg(1, "socket.io"), arg(2, "3000").parse::<u16>()?);
    let config = AdapterConfig::default().with_key(key);
    let state = match arg(3, "classic") {
        "classic" => SioAdapterCtr::with_config(url, config)?,
        "sharded" => SioAdapterCtr::sharded_with_config(url, config)?,
        other => return Err(format!("protocol: expected classic or sharded, got {other:?}").into()),
    };
    let state = state.on_server_side_emit(|event, args| {
        println!("SERVER_SIDE {event} {}", Value::Array(args.to_vec()));
        Value::from("pong-from-rust")
    });
    STATE.set(state.clone()).ok();
    let (layer, io) = socketioxide::SocketIo::builder().with_adapter::<SioAdapter<_>>(state).build_layer();
    io.ns("/", on_connect);
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("LISTENING {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
