package vm

// A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs.
//
// Why not github.com/u-root/u-root/pkg/cpio: it fits functionally, but it would add
// the u-root module (and u-root/uio) to the product's go.mod for a test helper, and the
// initramfs holds only directories, regular files and one device node, for which the
// format is a 110-byte text header per entry. This file is the whole of it.

import (
	"fmt"
	"io"
)

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

type cpioWriter struct {
	w   io.Writer
	n   int64 // bytes written so far, for padding to 4
	ino uint32
	err error
}

// entry writes one archive member. data is nil for directories and device nodes.
func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&modeDir != 0 {
		nlink = 2
	}
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	// rdevmajor, rdevminor, namesize (with the NUL), check. mtime 0 keeps the archive
	// reproducible, so its hash is a good cache key.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil || len(b) == 0 {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil {
		c.err = fmt.Errorf("writing cpio archive: %w", err)
	}
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) Dir(name string) { c.entry(name, modeDir|0o755, 0, 0, nil) }
func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.entry(name, modeFile|perm, 0, 0, data)
}
func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.entry(name, modeChar|0o600, major, minor, nil)
}

// Close writes the trailer that ends the archive.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}
