//! Every Redis channel name is built and parsed here, and nowhere else (docs/protocol.md §1.1).
//!
//! With key `K`, namespace `N` and server uid `U`:
//!
//! | purpose | channel |
//! |---|---|
//! | broadcast to everybody / several rooms | `K#N#` |
//! | broadcast to exactly one room `R` | `K#N#R#` |
//! | requests | `K-request#N#` |
//! | responses, shared | `K-response#N#` |
//! | responses for server `U` only | `K-response#N#U#` |
//!
//! Broadcasts are received through the pattern `K#N#*`. No escaping is applied anywhere,
//! exactly as in the official adapter.
//!
//! The sharded adapter's channels ([`ShardedChannels`]), with channel prefix `P`:
//!
//! | purpose | channel |
//! |---|---|
//! | every message of the namespace | `P#N#` |
//! | messages for room `R` (dynamic subscription modes) | `P#N#R#` |
//! | responses for server `U` only | `P#N#U#` |

use crate::sharded::SubscriptionMode;

/// The channels of one namespace adapter.
///
/// ```
/// use sioadapter::channels::{ChannelKind, Channels};
/// let c = Channels::new("socket.io", "/admin", "AAAAAA");
/// assert_eq!(c.broadcast_for(Some("room1")), "socket.io#/admin#room1#");
/// assert_eq!(c.classify(b"socket.io#/admin#room1#"), Some(ChannelKind::Broadcast(Some(&b"room1"[..]))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    broadcast: String,
    pattern: String,
    request: String,
    response: String,
    specific_response: String,
}

/// What a received channel name means to the namespace adapter that subscribed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind<'a> {
    /// A broadcast: on the main channel (`None`) or for exactly one room.
    Broadcast(Option<&'a [u8]>),
    /// The request channel.
    Request,
    /// A response channel (shared or this server's own).
    Response,
}

impl Channels {
    /// The channels for key prefix `key` (empty means `socket.io`, as in the official adapter),
    /// namespace `nsp` and server uid `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let key = if key.is_empty() { crate::config::DEFAULT_KEY } else { key };
        let broadcast = format!("{key}#{nsp}#");
        let response = format!("{key}-response#{nsp}#");
        Channels { pattern: format!("{broadcast}*"), broadcast, request: format!("{key}-request#{nsp}#"), specific_response: format!("{response}{uid}#"), response }
    }

    /// `K#N#`: broadcasts to everybody, to several rooms, or with excepts only.
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// `K#N#*`: the pattern every node PSUBSCRIBEs to receive broadcasts.
    pub fn broadcast_pattern(&self) -> &str {
        &self.pattern
    }

    /// The channel a broadcast is published on: `K#N#R#` for exactly one room, else `K#N#`.
    pub fn broadcast_for(&self, single_room: Option<&str>) -> String {
        match single_room {
            Some(room) => format!("{}{room}#", self.broadcast),
            None => self.broadcast.clone(),
        }
    }

    /// `K-request#N#`.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// `K-response#N#`, the shared response channel.
    pub fn response(&self) -> &str {
        &self.response
    }

    /// `K-response#N#U#` for this server.
    pub fn own_response(&self) -> &str {
        &self.specific_response
    }

    /// `K-response#N#U#` for another server `uid` (where a responder with
    /// `publishOnSpecificResponseChannel` answers that server's requests).
    pub fn response_for(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response)
    }

    /// The plain channels to SUBSCRIBE (request, shared response, own response).
    pub fn subscriptions(&self) -> [&str; 3] {
        [&self.request, &self.response, &self.specific_response]
    }

    /// Classifies a received channel name; `None` when it is not one of this adapter's.
    pub fn classify<'a>(&self, channel: &'a [u8]) -> Option<ChannelKind<'a>> {
        if let Some(rest) = channel.strip_prefix(self.broadcast.as_bytes()) {
            // The room is what lies between the prefix and the final character; `K#N##` (room
            // "") means the main channel, as in the official receiver.
            return Some(ChannelKind::Broadcast(match rest.split_last() {
                Some((_, room)) if !room.is_empty() => Some(room),
                _ => None,
            }));
        }
        if channel == self.request.as_bytes() {
            Some(ChannelKind::Request)
        } else if channel == self.response.as_bytes() || channel == self.specific_response.as_bytes() {
            Some(ChannelKind::Response)
        } else {
            None
        }
    }
}

/// The channels of one namespace of the sharded adapter.
///
/// ```
/// use sioadapter::channels::{ShardedChannel, ShardedChannels};
/// let c = ShardedChannels::new("socket.io", "/", "0123456789abcdef");
/// assert_eq!(c.main(), "socket.io#/#");
/// assert_eq!(c.room("r1"), "socket.io#/#r1#");
/// assert_eq!(c.responses_of("fedcba9876543210"), "socket.io#/#fedcba9876543210#");
/// assert_eq!(c.classify(b"socket.io#/#0123456789abcdef#"), Some(ShardedChannel::Response));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    main: String,
    responses: String,
}

/// What a received channel name means to the sharded namespace that subscribed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardedChannel {
    /// The main channel or a room channel: a message for every node (of the room).
    Message,
    /// This server's own response channel.
    Response,
}

impl ShardedChannels {
    /// The channels for channel prefix `prefix`, namespace `nsp` and server uid `uid`.
    pub fn new(prefix: &str, nsp: &str, uid: &str) -> Self {
        let main = format!("{prefix}#{nsp}#");
        ShardedChannels { responses: format!("{main}{uid}#"), main }
    }

    /// `P#N#`: every message of the namespace.
    pub fn main(&self) -> &str {
        &self.main
    }

    /// `P#N#U#`: answers to this server's requests.
    pub fn responses(&self) -> &str {
        &self.responses
    }

    /// `P#N#R#`: messages for room `room`.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// Where a BROADCAST without ack goes, as the official sharded adapter decides: the channel
    /// of `single_room` (the broadcast's only room) when `mode` gives it one
    /// ([`SubscriptionMode::room_has_channel`]), else the main channel.
    pub fn broadcast(&self, mode: SubscriptionMode, single_room: Option<&str>) -> String {
        match single_room {
            Some(room) if mode.room_has_channel(room) => self.room(room),
            _ => self.main.clone(),
        }
    }

    /// `P#N#U#` for server `uid`: where its requests are answered.
    pub fn responses_of(&self, uid: &str) -> String {
        self.room(uid)
    }

    /// Classifies a received channel name; `None` when it is not one of this namespace's.
    pub fn classify(&self, channel: &[u8]) -> Option<ShardedChannel> {
        if channel == self.responses.as_bytes() {
            Some(ShardedChannel::Response)
        } else if channel.starts_with(self.main.as_bytes()) {
            Some(ShardedChannel::Message)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_official_adapter() {
        let c = Channels::new("socket.io", "/", "AAAAAA");
        assert_eq!(c.broadcast(), "socket.io#/#");
        assert_eq!(c.broadcast_pattern(), "socket.io#/#*");
        assert_eq!(c.broadcast_for(Some("room1")), "socket.io#/#room1#");
        assert_eq!(c.broadcast_for(None), "socket.io#/#");
        assert_eq!(c.subscriptions(), ["socket.io-request#/#", "socket.io-response#/#", "socket.io-response#/#AAAAAA#"]);
        assert_eq!(c.response_for("BBBBBB"), "socket.io-response#/#BBBBBB#");
        let admin = Channels::new("", "/admin", "x");
        assert_eq!(admin.broadcast(), "socket.io#/admin#");
        assert_eq!(admin.request(), "socket.io-request#/admin#");
    }

    #[test]
    fn classify_recovers_rooms_verbatim() {
        let c = Channels::new("k", "/", "U");
        assert_eq!(c.classify(b"k#/#"), Some(ChannelKind::Broadcast(None)));
        assert_eq!(c.classify(b"k#/##"), Some(ChannelKind::Broadcast(None)));
        assert_eq!(c.classify(b"k#/#a#b c#"), Some(ChannelKind::Broadcast(Some(b"a#b c"))));
        assert_eq!(c.classify(b"k-request#/#"), Some(ChannelKind::Request));
        assert_eq!(c.classify(b"k-response#/#"), Some(ChannelKind::Response));
        assert_eq!(c.classify(b"k-response#/#U#"), Some(ChannelKind::Response));
        assert_eq!(c.classify(b"k-response#/#V#"), None);
        assert_eq!(c.classify(b"k#/admin#"), None);
        assert_eq!(c.classify(b"other"), None);
    }

    #[test]
    fn sharded_names_follow_the_official_sharded_adapter() {
        let c = ShardedChannels::new("p", "/admin", "U");
        assert_eq!((c.main(), c.responses()), ("p#/admin#", "p#/admin#U#"));
        assert_eq!(c.room("a#b"), "p#/admin#a#b#");
        assert_eq!(c.classify(b"p#/admin#"), Some(ShardedChannel::Message));
        assert_eq!(c.classify(b"p#/admin#room#"), Some(ShardedChannel::Message));
        assert_eq!(c.classify(b"p#/admin#U#"), Some(ShardedChannel::Response));
        assert_eq!(c.classify(b"p#/#"), None);
    }
}
