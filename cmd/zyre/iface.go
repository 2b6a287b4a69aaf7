package main

import (
	"fmt"
	"strings"

	"github.com/zyre-go/zyre/internal/beacon"
)

// chooseInterface resolves --interface as the node's beacon will (see
// beacon.Choose), prints the choice on stderr, and returns the spec to give
// the node: the chosen address, so that both agree (a name would mean the
// interface's first address, not the one asked for), or "*" for all. An
// error is left for the node to report, with spec unchanged.
func chooseInterface(env *cliEnv, spec string) string {
	cs, err := beacon.Choose(spec)
	if err != nil {
		return spec
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.String())
	}
	fmt.Fprintf(env.stderr, "zyre: beacon on interface %s\n", strings.Join(parts, "; "))
	if spec == beacon.All {
		return spec
	}
	return cs[0].Addr.String()
}
