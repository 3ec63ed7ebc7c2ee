//go:build linux || darwin

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// raiseFileLimit lifts the soft open-file limit to the hard one (Go does so
// at start-up since 1.19; doing it again costs nothing and covers older
// toolchains), and returns a line to print when sockets still do not fit.
func raiseFileLimit(sockets uint64) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return ""
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			lim = want
		}
	}
	// One descriptor a socket, and some for the process itself.
	if need := sockets + 64; need > lim.Cur {
		return fmt.Sprintf("%d sockets need about %d open files, but the limit is %d (the system's hard limit); "+
			"raise it (ulimit -Hn as root, LimitNOFILE= under systemd) or expect connect errors", sockets, need, lim.Cur)
	}
	return ""
}

// ttyWidth is the width in columns of the terminal w writes to, or 0.
func ttyWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	var ws struct{ row, col, x, y uint16 }
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws))); errno != 0 {
		return 0
	}
	return int(ws.col)
}
