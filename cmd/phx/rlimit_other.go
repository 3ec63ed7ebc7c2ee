//go:build !(linux || darwin)

package main

import "io"

// raiseFileLimit has nothing to raise here.
func raiseFileLimit(uint64) string { return "" }

// ttyWidth is unknown here.
func ttyWidth(io.Writer) int { return 0 }
