// Command proxybench is the harness of the whole-system benchmark of
// Verity's identity-aware proxy against peers (bench/proxy/run.sh drives
// it): the upstream every proxy forwards to, a tuned
// httputil.ReverseProxy, the benchmark tenant with its sign-ins, and the
// interleaved wrk runs with their summary. It is a module of its own, so
// that Verity's layering and dependency checks do not see it, and it talks
// to Verity only over HTTP.
//
//	proxybench upstream -addr 127.0.0.1:18080
//	proxybench reverseproxy -addr 127.0.0.1:18081 -upstream http://127.0.0.1:18080
//	proxybench setup -api https://127.0.0.1:18443 -ca ca.pem -admin-password ... -route https://bench.localhost:19443/ ...
//	proxybench sessions -n 2000 -out cookies.txt ...
//	proxybench hit -cookies cookies.txt -url http://127.0.0.1:19443/ -host bench.localhost:19443
//	proxybench measure -rounds 3 -target direct=http://127.0.0.1:18080/ -target verity=... -header 'verity=Cookie: ...'
//
// Everything runs on 127.0.0.1; nothing here is part of Verity itself.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"upstream":     runUpstream,
		"reverseproxy": runReverseProxy,
		"ports":        runPorts,
		"setup":        runSetup,
		"sessions":     runSessions,
		"o2p-signin":   runO2PSignIn,
		"hit":          runHit,
		"measure":      runMeasure,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "proxybench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: proxybench upstream|reverseproxy|ports|setup|sessions|o2p-signin|hit|measure [flags]")
	os.Exit(2)
}
