package bench

import (
	"math/rand/v2"
	"net/netip"
)

// watcher decides when converge reads the whole of /proc/net/ip_vs. A
// read and parse of 55,000 lines takes hundreds of milliseconds of a vCPU
// under TCG, taken from the proxy being timed; a netlink dump of one
// virtual server's real servers takes well under one. So converge probes a
// few virtual servers (the watched ones) at short gaps and reads the whole
// table only once every watched one is right: at first a random sample of
// the wanted table, after a read that was not whole a sample of those it
// found wrong. Near the end the probes follow the last missing servers, and
// the read that shows the table whole comes within one probe gap of it.
type watcher struct {
	want table
	keys []vsKey // watched, not yet seen right
	rng  *rand.Rand
}

// watchSample is how many virtual servers are watched at most: enough
// that all of a random sample is right only near the end.
const watchSample = 16

func newWatcher(want table, seed uint64) *watcher {
	w := &watcher{want: want, rng: rand.New(rand.NewPCG(seed, seed))}
	w.keys = w.sample(sortedKeys(want))
	return w
}

// ready probes the watched virtual servers in order, drops each one that
// is right and stops at the first that is not; it reports how many it
// probed and whether none is left to watch. A probe that fails (the
// virtual server is not there yet) is not right.
func (w *watcher) ready(dests func(vsKey) (map[netip.AddrPort]int, error)) (probes int, ready bool) {
	for len(w.keys) > 0 {
		k := w.keys[0]
		probes++
		got, err := dests(k)
		if err != nil || !sameDests(got, w.want[k]) {
			return probes, false
		}
		w.keys = w.keys[1:]
	}
	return probes, true
}

// reset watches a sample of the wanted virtual servers that got (a whole
// read) lacks or holds with other real servers. Virtual servers got has
// and want does not are not watched: the next whole read sees them.
func (w *watcher) reset(got table) {
	var wrong []vsKey
	for _, k := range sortedKeys(w.want) {
		have, ok := got[k]
		if !ok || !sameDests(have, w.want[k]) {
			wrong = append(wrong, k)
		}
	}
	w.keys = w.sample(wrong)
}

func (w *watcher) sample(keys []vsKey) []vsKey {
	w.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys[:min(len(keys), watchSample)]
}

// sameDests reports whether got holds exactly the real servers of want,
// whatever the weights (as table.diff).
func sameDests(got, want map[netip.AddrPort]int) bool {
	if len(got) != len(want) {
		return false
	}
	for a := range got {
		if _, ok := want[a]; !ok {
			return false
		}
	}
	return true
}
