// Command etcd runs the etcd server of the pinned release (its own go.mod has replaces,
// so it cannot be built with `go install`).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
