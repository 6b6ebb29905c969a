package main

import "runtime/debug"

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = ""

// versionString is the build's version: the -X value, else the module
// version Go recorded, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
