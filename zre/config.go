package zre

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/zyre-go/zyre/internal/seam"
	"github.com/zyre-go/zyre/zre/zremsg"
)

// Header is one HELLO header property (Config.Headers, Enter.Headers), in
// the order of the wire; see package zremsg, the message codec.
type Header = zremsg.Header

// Defaults for the zero fields of Config. The timers are those of the C
// reference (zyre_node.c).
const (
	DefaultBeaconPort     = 5670
	DefaultBeaconInterval = time.Second
	DefaultEvasive        = 5 * time.Second
	DefaultSilent         = 5 * time.Second
	DefaultExpired        = 30 * time.Second
	DefaultEventQueue     = 10000
	DefaultEventBytes     = 64 << 20 // 64 MiB
	DefaultMaxPeerGroups  = 4096
	DefaultSendQueueTime  = 100 * time.Millisecond

	// Defaults of Limits.
	DefaultMaxPending        = 256
	DefaultMaxPendingPerAddr = 64
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerAddr   = 64
	DefaultConnRate          = 20
	DefaultConnBurst         = 64
	// reapInterval is how often the node checks its peers' timers (the C
	// reference's REAP_INTERVAL).
	reapInterval = time.Second
)

// BeaconConfig configures UDP discovery.
type BeaconConfig struct {
	Port     int           // UDP port; 0 means DefaultBeaconPort (5670)
	Interval time.Duration // time between beacons; 0 means DefaultBeaconInterval
	// Interface is an interface name ("eth0") or one of its IPv4 addresses;
	// "" means the interface of the default IPv4 route.
	Interface string
	// Loopback confines beacons to lo (127.255.255.255) and binds the inbox
	// to 127.0.0.1 unless Bind says otherwise: for tests and demos on one
	// host. Nothing is sent outside loopback.
	Loopback bool
	// Disabled turns discovery off: peers are only those given to
	// ConnectPeer and those that connect to us.
	Disabled bool
}

// Limits bound what strangers on the network can make a node hold and
// compute: beacons are not authenticated and anyone can connect to the
// inbox. A zero field means its default; a negative one, no limit. The
// defaults leave room for many nodes on one host (all connecting from one
// address) while a flood from one address cannot lock others out: up to
// 64 nodes behind one address (one host on loopback, a NAT) mesh at once;
// for more, raise MaxPendingPerAddr, MaxConnsPerAddr and ConnBurst.
type Limits struct {
	// MaxPending bounds the peers dialled on a beacon that have not said
	// HELLO yet, in total (DefaultMaxPending, 256); MaxPendingPerAddr
	// bounds them per beacon source address (DefaultMaxPendingPerAddr,
	// 64). A beacon of an unknown peer beyond MaxPendingPerAddr is
	// ignored (Stats.PendingRefused); a real peer beacons again a second
	// later. At MaxPending, a beacon from an address below its own cap
	// takes the place of a pending peer chosen at random (also counted in
	// PendingRefused), so that strangers beaconing from many addresses
	// cannot keep a new honest peer out for good.
	// Each pending peer holds one connection attempt: one that never
	// completes its handshake is given up after at most two tries
	// (Stats.DialsGivenUp), and a beacon does not dial that endpoint again
	// for 10 s.
	MaxPending        int
	MaxPendingPerAddr int
	// MaxConns bounds the connections open on our inbox, in total
	// (DefaultMaxConns, 1024, or half the process's limit of open files
	// when that is lower, leaving the other half to our connections to
	// peers and the rest of the process), and MaxConnsPerAddr per remote
	// address (DefaultMaxConnsPerAddr, 64); a connection beyond them is
	// closed as soon as it is accepted (Stats.InboxRefused). Strangers can
	// fill MaxConns from many addresses; from one they get
	// MaxConnsPerAddr (an IPv6 address counts as its /64: the inbox
	// listens on IPv6 too, where one host has as many addresses as it
	// likes).
	MaxConns        int
	MaxConnsPerAddr int
	// ConnRate is the rate of new inbox connections accepted per remote
	// address, per second (DefaultConnRate, 20), with bursts of ConnBurst
	// (DefaultConnBurst, 64); beyond it a connection is closed as soon as
	// it is accepted (Stats.InboxRateLimited). Each CURVE handshake
	// needs its own connection, so this bounds the X25519 work a stranger
	// can make a secure node do (about 0.3 ms each: 20 a second is under
	// 1 % of a core per address).
	ConnRate  float64
	ConnBurst int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxPending, DefaultMaxPending)
	def(&l.MaxPendingPerAddr, DefaultMaxPendingPerAddr)
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
		if fds := fdLimit(); fds > 0 && fds/2 < l.MaxConns {
			l.MaxConns = max(fds/2, 1)
		}
	}
	def(&l.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	def(&l.ConnBurst, DefaultConnBurst)
	if l.ConnRate == 0 {
		l.ConnRate = DefaultConnRate
	}
	return l
}

// Config configures a Node. New copies it; the zero value is usable (a
// node on the default interface with a random UUID).
type Config struct {
	// Name is the node's name, sent in HELLO. "" means the C reference's
	// default: the first 6 characters of the UUID in upper case.
	Name string
	// Headers are sent in HELLO in this order (the C reference sends its
	// headers in czmq's hash order; a list keeps whatever order is given).
	Headers []Header
	// UUID identifies the node; uuid.Nil means a random one.
	UUID uuid.UUID

	Beacon BeaconConfig

	// Bind is the inbox's TCP address (host or host:port). "" means all
	// interfaces on an ephemeral port, or 127.0.0.1 in Beacon.Loopback mode.
	Bind string
	// Advertise is the host put in our HELLO endpoint. "" means the bound
	// host, or when that is unspecified (0.0.0.0) the beacon interface's
	// address, or 127.0.0.1 when beacons are disabled. A whole endpoint
	// (tcp://host:port) is advertised as it is (parity.go).
	Advertise string

	// Evasive: a peer we heard nothing from (no beacon, no message) for
	// this long is sent a PING and reported with an Evasive event.
	Evasive time.Duration
	// Silent: a peer whose beacons we hear but which sent no message over
	// TCP for this long is reported with a Silent event.
	Silent time.Duration
	// Expired: a peer we heard nothing from for this long is removed
	// (Exit event).
	Expired time.Duration

	// EventQueue bounds the events waiting for the consumer (counted in
	// Events' channel and behind it); see Node for the policy.
	EventQueue int
	// EventBytes bounds the memory of the events waiting for the consumer
	// (their content plus a fixed cost per event); 0 means
	// DefaultEventBytes. See Node for the policy.
	EventBytes int
	// MaxPeerGroups bounds the groups one peer may be in (from its HELLO
	// and JOINs); further JOINs of that peer are ignored and counted in
	// Stats.GroupsIgnored. 0 means DefaultMaxPeerGroups.
	MaxPeerGroups int

	// SendHWM is the number of messages queued per peer before sends fail
	// with zmtp.ErrPeerNotResponding; 0 means the zmtp default.
	SendHWM int
	// SendQueueTime bounds what is queued for one peer by time as well
	// (zmtp.SendBound on our connection to it): the connection measures
	// how fast the peer takes data, and a send fails as at SendHWM
	// (WhisperContext and the others wait) while the data queued would
	// take longer than this to go out, or 256 KiB when that is more. So
	// bulk data (a private stream) goes at the link's pace instead of
	// queueing many megaoctets, and a chat line or a JOIN sent meanwhile
	// waits behind about this much of it, not seconds; the kernel's
	// share is bounded too (TCP_NOTSENT_LOWAT of 128 KiB, on Linux). 0
	// means DefaultSendQueueTime; <0 turns the bound off (SendHWM
	// alone).
	SendQueueTime time.Duration

	// Limits bound what strangers can make the node hold; see Limits.
	Limits Limits

	// Logger receives the node's logs; nil means none.
	Logger *slog.Logger

	// Secure, when set, turns on secure mode (see SecureConfig and
	// spec/secure-node.md): the inbox is a CURVE server with an
	// authorizer, each DEALER a CURVE client with the key from the peer's
	// beacon, beacons are v3 with our key, HELLO carries X-PUBLICKEY, and
	// every peer's UUID is checked against the key that authenticated it.
	// Our UUID is then UUIDFromKey(Secure's public key); a different
	// non-nil UUID is an error. Plain and secure nodes never mesh.
	Secure *SecureConfig

	// Gossip, when set, discovers peers by ZGOSSIP (gossip.go) instead of
	// UDP beacons, or beside them with GossipConfig.Beacons.
	Gossip *GossipConfig

	// seamSlot holds the transport that zretest.WithTransport sets to
	// replace the real network (transport.go); empty for the real one.
	seamSlot
}

// seamSlot is unexported so that Config's field is too: zre's API shows no
// seam. seam.Set reaches it through the Slot's promoted method.
type seamSlot = seam.Slot

// transport is the transport that replaces the real network, nil for it.
func (c *Config) transport() seam.Transport { return seam.TransportOf(c.seamSlot) }

// withDefaults returns a copy of c with defaults filled in and checks it.
func (c Config) withDefaults() (Config, error) {
	c.Headers = append([]Header(nil), c.Headers...)
	if c.Secure != nil {
		sc := *c.Secure
		c.Secure = &sc
		if !sc.Secret.IsZero() {
			id := UUIDFromKey(sc.Secret.Public())
			if c.UUID != uuid.Nil && c.UUID != id {
				return c, fmt.Errorf("zre: UUID %s given, but secure mode derives %s from the public key: %w", c.UUID, id, ErrKeyMismatch)
			}
			c.UUID = id
		}
		for _, h := range c.Headers {
			if h.Key == HeaderPublicKey {
				return c, fmt.Errorf("zre: header %q is set by secure mode", h.Key)
			}
		}
	}
	if c.UUID == uuid.Nil {
		id, err := uuid.NewRandom()
		if err != nil {
			return c, fmt.Errorf("zre: failed to make a UUID: %w", err)
		}
		c.UUID = id
	}
	if c.Name == "" {
		c.Name = DefaultName(c.UUID)
	}
	if len(c.Name) > 255 {
		return c, fmt.Errorf("zre: name of %d octets, at most 255", len(c.Name))
	}
	seen := make(map[string]bool)
	for _, h := range c.Headers {
		if h.Key == "" || len(h.Key) > 255 {
			return c, fmt.Errorf("zre: header key %q: must be 1 to 255 octets", h.Key)
		}
		if seen[h.Key] {
			return c, fmt.Errorf("zre: header %q given twice", h.Key)
		}
		seen[h.Key] = true
	}
	if c.Beacon.Port == 0 {
		c.Beacon.Port = DefaultBeaconPort
	}
	if c.Beacon.Port < 0 || c.Beacon.Port > 65535 {
		return c, fmt.Errorf("zre: bad beacon port %d", c.Beacon.Port)
	}
	if c.Beacon.Interval == 0 {
		c.Beacon.Interval = DefaultBeaconInterval
	}
	if c.Evasive <= 0 {
		c.Evasive = DefaultEvasive
	}
	if c.Silent <= 0 {
		c.Silent = DefaultSilent
	}
	if c.Expired <= 0 {
		c.Expired = DefaultExpired
	}
	if c.EventQueue <= 0 {
		c.EventQueue = DefaultEventQueue
	}
	if c.EventBytes <= 0 {
		c.EventBytes = DefaultEventBytes
	}
	if c.MaxPeerGroups <= 0 {
		c.MaxPeerGroups = DefaultMaxPeerGroups
	}
	if c.SendQueueTime == 0 {
		c.SendQueueTime = DefaultSendQueueTime
	}
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// bindAddr returns the host:port the inbox listens on.
func (c *Config) bindAddr() string {
	b := c.Bind
	if b == "" {
		if c.Beacon.Loopback {
			return "127.0.0.1:0"
		}
		return "0.0.0.0:0"
	}
	if _, err := netip.ParseAddrPort(b); err == nil {
		return b
	}
	if strings.HasPrefix(b, "[") || strings.Count(b, ":") == 1 {
		return b // host:port with a name, or [v6]:port
	}
	if a, err := netip.ParseAddr(b); err == nil {
		return netip.AddrPortFrom(a, 0).String()
	}
	return b + ":0"
}

// DefaultName returns the C reference's default node name for id: the
// first 6 characters of its upper-case, dash-less string form.
func DefaultName(id uuid.UUID) string {
	return uuidString(id)[:6]
}

// uuidString is zyre's string form of a UUID: 32 upper-case hex digits.
func uuidString(id uuid.UUID) string {
	return strings.ToUpper(strings.ReplaceAll(id.String(), "-", ""))
}
