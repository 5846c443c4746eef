//! Connection slots: how many connections a server holds at once, in all and from one client.
//!
//! Without a per-client bound one client takes every slot: it opens `connections_max`
//! connections (sending nothing, or one slow request on each) and every other client's
//! connection is closed on accept until it lets go. With it, a client that wants the whole
//! server needs `total / per_client` addresses.
//!
//! Owns: [`ClientAddress`] (the unit a client is counted in) and [`ConnectionSlots`].
//! Never: counts one client twice for one connection, or keeps a client's entry once its
//! last connection closed.
//! Bounds: at most `total` slots taken, at most `per_client` by one [`ClientAddress`]; the
//! table holds at most `total` entries (one per client with a slot).
//!
//! A client is its IPv4 address, or its IPv6 address's /64 prefix: one IPv6 host is commonly
//! given a whole /64 and can send from any address in it, so counting IPv6 addresses singly
//! would bound nothing. An IPv4 address mapped into IPv6 counts as that IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The unit one client is counted in: an IPv4 address, or an IPv6 /64 prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientAddress {
    V4(Ipv4Addr),
    /// The first 64 bits of the address; the rest are zero.
    V6Prefix(Ipv6Addr),
}

impl ClientAddress {
    /// The client that `address` belongs to.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
            },
        }
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Prefix(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Why a connection got no slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotRefused {
    #[error("the server holds its most connections")]
    Full,
    #[error("the client holds its most connections")]
    ClientFull,
}

#[derive(Debug, Default)]
struct Taken {
    total: usize,
    by_client: HashMap<ClientAddress, usize>,
}

/// The slots of one server. Cheap to clone (the clones share the slots).
#[derive(Clone, Debug)]
pub struct ConnectionSlots {
    total_max: usize,
    per_client_max: usize,
    taken: Arc<Mutex<Taken>>,
}

impl ConnectionSlots {
    /// At most `total_max` connections, at most `per_client_max` from one client.
    pub fn new(total_max: usize, per_client_max: usize) -> Self {
        assert!(
            0 < per_client_max && per_client_max <= total_max,
            "connection bounds: 0 < per client <= total"
        );
        Self {
            total_max,
            per_client_max,
            taken: Arc::default(),
        }
    }

    /// A slot for a connection from `address`, held until the [`ConnectionSlot`] is dropped.
    pub fn take(&self, address: IpAddr) -> Result<ConnectionSlot, SlotRefused> {
        let client = ClientAddress::of(address);
        let mut taken = crate::shared::lock(&self.taken);
        if taken.total >= self.total_max {
            return Err(SlotRefused::Full);
        }
        let mine = taken.by_client.entry(client).or_insert(0);
        if *mine >= self.per_client_max {
            return Err(SlotRefused::ClientFull);
        }
        *mine += 1;
        taken.total += 1;
        assert!(taken.by_client.len() <= taken.total, "one entry per client");
        Ok(ConnectionSlot {
            client,
            taken: Arc::clone(&self.taken),
        })
    }

    /// Connections held now (in all, by `address`'s client).
    #[cfg(test)]
    fn held(&self, address: IpAddr) -> (usize, usize) {
        let taken = crate::shared::lock(&self.taken);
        let mine = taken.by_client.get(&ClientAddress::of(address));
        (taken.total, mine.copied().unwrap_or(0))
    }
}

/// One connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    client: ClientAddress,
    taken: Arc<Mutex<Taken>>,
}

impl ConnectionSlot {
    /// The client this connection counts against.
    pub fn client(&self) -> ClientAddress {
        self.client
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut taken = crate::shared::lock(&self.taken);
        let mine = taken
            .by_client
            .get_mut(&self.client)
            .expect("a held slot's client is counted");
        *mine -= 1;
        if *mine == 0 {
            taken.by_client.remove(&self.client);
        }
        taken.total -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn one_client_takes_at_most_its_share_and_others_still_connect() {
        let slots = ConnectionSlots::new(4, 2);
        let first = slots.take(v4(2)).unwrap();
        let _second = slots.take(v4(2)).unwrap();
        assert_eq!(slots.take(v4(2)).unwrap_err(), SlotRefused::ClientFull);
        let _other = slots.take(v4(1)).unwrap();
        let _another = slots.take(v4(3)).unwrap();
        assert_eq!(slots.take(v4(4)).unwrap_err(), SlotRefused::Full);
        drop(first);
        assert_eq!(slots.held(v4(2)), (3, 1));
        let _again = slots.take(v4(2)).unwrap();
        assert_eq!(slots.held(v4(2)), (4, 2));
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_slash_64_and_a_mapped_ipv4_as_ipv4() {
        let slots = ConnectionSlots::new(8, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _a = slots.take(a).unwrap();
        let _b = slots.take(b).unwrap();
        assert_eq!(
            slots.take("2001:db8:1:2::99".parse().unwrap()).unwrap_err(),
            SlotRefused::ClientFull,
            "every address of one /64 is one client"
        );
        assert!(slots.take(elsewhere).is_ok());
        let mapped: IpAddr = "::ffff:127.0.0.9".parse().unwrap();
        let _mapped = slots.take(mapped).unwrap();
        let _plain = slots.take(v4(9)).unwrap();
        assert_eq!(slots.take(v4(9)).unwrap_err(), SlotRefused::ClientFull);
        assert_eq!(
            ClientAddress::of(a).to_string(),
            "2001:db8:1:2::/64",
            "named as its prefix"
        );
    }

    #[test]
    fn a_client_whose_connections_all_closed_leaves_no_entry() {
        let slots = ConnectionSlots::new(1_024, 1);
        for last in 0..=255u8 {
            drop(slots.take(v4(last)).unwrap());
        }
        assert!(crate::shared::lock(&slots.taken).by_client.is_empty());
        assert_eq!(slots.held(v4(1)), (0, 0));
    }
}
