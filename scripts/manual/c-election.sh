#!/bin/sh
# Manual check: leader election between C zyre nodes and ours, in network
# namespaces on a bridge (nothing leaves this machine). Not run by scripts/test:
# it needs a libzyre built with its draft API, which no Debian package has.
#
# Usage (as root):
#   scripts/manual/c-election.sh ZYRE_PREFIX [SCENARIO...]
# ZYRE_PREFIX holds include/zyre.h and lib/libzyre.so (an installed zyre,
# e.g. /usr/local, built by you with drafts on); czmq and libzmq come from
# Debian's libczmq-dev and libzmq3-dev. Scenarios (default: all):
#   mixed       2 C contesters, 2 of ours contesting: one leader, all agree
#   passive     3 C contesters, 1 of ours not contesting: the C nodes elect
#   gopassive   2 of ours contesting, 1 C node not contesting
#   churn       2 C + 2 of ours contesting; each C node leaves the group in turn
#   conly       control: 4 C contesters, none of ours
#   cpassive    control: gopassive with C nodes only (2 contesters, 1 not)
#   gstagger    control: as cstagger with our nodes only
#   cstagger    control: mixed with C nodes only, the second pair 50 ms later
#               (ours start a little after the C nodes in mixed)
# With C_ELECTION_VERBOSE=1, every node logs its election steps (nK.err).
# Prints each node's LEADER lines and PASS or FAIL per scenario.
set -eu
prefix=${1:?usage: $0 ZYRE_PREFIX [SCENARIO...]}
shift
scenarios=${*:-mixed passive gopassive churn conly cpassive cstagger gstagger}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/ri-celect.XXXXXX)
group=ELECTG
cc -Wall -I"$prefix/include" -o "$work/cpeer" "$here/c_election_peer.c" \
	-L"$prefix/lib" -Wl,-rpath,"$prefix/lib" -lzyre -lczmq -lzmq
(cd "$root" && go build -o "$work/zyre" ./cmd/zyre)

nodes=""
cleanup() {
	for n in $nodes; do ip netns del "ri-$n" 2>/dev/null || true; done
	ip netns del ri-hub 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# setup N NAME: logs in $work/NAME; namespaces ri-n1..ri-nN, each with veth ri-vK (10.77.0.K/24) on bridge ri-br.
setup() {
	cleanup
	nodes=""
	out="$work/$2"
	mkdir -p "$out"
	ip netns add ri-hub
	ip -n ri-hub link add ri-br type bridge
	ip -n ri-hub link set ri-br up
	k=1
	while [ "$k" -le "$1" ]; do
		ip netns add "ri-n$k"
		ip link add "ri-v$k" netns "ri-n$k" type veth peer name "ri-p$k" netns ri-hub
		ip -n ri-hub link set "ri-p$k" master ri-br up
		ip -n "ri-n$k" addr add "10.77.0.$k/24" brd 10.77.0.255 dev "ri-v$k"
		ip -n "ri-n$k" link set "ri-v$k" up
		ip -n "ri-n$k" link set lo up
		nodes="$nodes n$k"
		k=$((k + 1))
	done
}

# cnode K CONTEST RUN_MS [LEAVE_AT_MS]; gnode K CONTEST RUN_S
cnode() {
	ip netns exec "ri-n$1" "$work/cpeer" "c$1" "ri-v$1" "$group" "$2" "$3" ${4:-} >"$out/n$1.out" 2>"$out/n$1.err" &
}
gnode() {
	c=""
	[ "$2" = 1 ] && c="--contest $group"
	ip netns exec "ri-n$1" timeout -s INT "$3" "$work/zyre" monitor --name "go$1" \
		--interface "ri-v$1" --group "$group" $c ${C_ELECTION_VERBOSE:+--verbose} >"$out/n$1.out" 2>"$out/n$1.err" &
}

# verdict NAME K...: every listed node's last LEADER names one and the same
# contester. Events after a node's first EXIT are not counted: nodes stop at
# the end of a run one after the other, and the rest elect again then.
verdict() {
	name=$1
	shift
	leaders=""
	for k in "$@"; do
		sed '/EXIT/,$d' "$out/n$k.out" >"$out/n$k.before-exit"
		l=$(grep -E '(^| )LEADER ' "$out/n$k.before-exit" | tail -n 1 | tr 'a-f' 'A-F' | grep -o '[0-9A-F]\{8\}-\?[0-9A-F]\{4\}-\?[0-9A-F]\{4\}-\?[0-9A-F]\{4\}-\?[0-9A-F]\{12\}' | tr -d - || true)
		n=$(grep -cE '(^| )LEADER ' "$out/n$k.before-exit" || true)
		echo "  n$k ($(grep -m1 -E '^(UUID|ENTER) ' "$out/n$k.out" | cut -c1-44)): $n LEADER events, last ${l:-none}"
		leaders="$leaders ${l:-none}"
	done
	u=$(echo $leaders | tr ' ' '\n' | sort -u)
	if [ "$(echo "$u" | wc -l)" = 1 ] && [ "$u" != none ]; then
		echo "PASS $name: one leader $u"
	else
		echo "FAIL $name: leaders $leaders"
		for k in "$@"; do echo "--- n$k"; grep -v EVASIVE "$out/n$k.out"; done
	fi
}

for s in $scenarios; do
	case $s in
	mixed)
		setup 4 mixed
		cnode 1 1 12000; cnode 2 1 12000; gnode 3 1 12; gnode 4 1 12
		wait; verdict mixed 1 2 3 4 ;;
	passive)
		setup 4 passive
		cnode 1 1 12000; cnode 2 1 12000; cnode 3 1 12000; gnode 4 0 12
		wait; verdict passive 1 2 3 4 ;;
	gopassive)
		setup 3 gopassive
		gnode 1 1 12; gnode 2 1 12; cnode 3 0 12000
		wait; verdict gopassive 1 2 3 ;;
	churn)
		setup 4 churn
		cnode 1 1 20000 6000; cnode 2 1 20000 12000; gnode 3 1 20; gnode 4 1 20
		wait; verdict churn-remaining 3 4 ;;
	conly)
		setup 4 conly
		cnode 1 1 12000; cnode 2 1 12000; cnode 3 1 12000; cnode 4 1 12000
		wait; verdict conly 1 2 3 4 ;;
	gstagger)
		setup 4 gstagger
		gnode 1 1 12; gnode 2 1 12; sleep 0.05; gnode 3 1 12; gnode 4 1 12
		wait; verdict gstagger 1 2 3 4 ;;
	cstagger)
		setup 4 cstagger
		cnode 1 1 12000; cnode 2 1 12000; sleep 0.05; cnode 3 1 12000; cnode 4 1 12000
		wait; verdict cstagger 1 2 3 4 ;;
	cpassive)
		setup 3 cpassive
		cnode 1 1 12000; cnode 2 1 12000; cnode 3 0 12000
		wait; verdict cpassive 1 2 3 ;;
	*) echo "unknown scenario $s" >&2; exit 2 ;;
	esac
done
echo "logs in $work"
