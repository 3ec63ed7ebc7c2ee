package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The phx binary serves with phxtest but must not link package testing.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	if slices.Contains(strings.Fields(string(out)), "testing") {
		t.Fatal("cmd/phx links package testing")
	}
}
