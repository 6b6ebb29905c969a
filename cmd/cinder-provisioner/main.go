// Command cinder-provisioner is a Kubernetes external dynamic provisioner that
// fulfils PersistentVolumeClaims with OpenStack Cinder volumes.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "cinder-provisioner: the controller is not wired yet")
	os.Exit(2)
}
