package authn

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// BreachedList looks passwords up in a file of SHA-1 hashes of breached
// passwords in the Have I Been Pwned download format: one "SHA1HEX:COUNT"
// line per password (40 hex digits, upper case as downloaded, either case
// accepted), sorted by hash, with "\n" or "\r\n" line ends.
//
// The full list is tens of gigabytes, so nothing is loaded: each lookup is a
// binary search over byte offsets with positioned reads (about log2 of the
// file size reads of a few hundred bytes, served from the page cache once
// warm). A BreachedList is safe for concurrent use.
type BreachedList struct {
	path string
	f    *os.File
	size int64
}

const (
	sha1HexLen = 2 * sha1.Size
	// maxBreachedLine bounds a line: 40 hex digits, a colon, a count of at
	// most 20 digits and "\r\n" take 63 bytes.
	maxBreachedLine = 128
)

// errNoLine means no line starts at or after the offset asked about.
var errNoLine = errors.New("no line after offset")

// OpenBreachedList opens a sorted breached-password file and checks that its
// first line has the expected shape, so a wrong file (an NTLM list, a range
// API response without prefixes) is caught at start rather than at the first
// password change. Sort order is not checked here; Verify does that.
func OpenBreachedList(path string) (*BreachedList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open breached password list: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open breached password list: %w", err)
	}
	b := &BreachedList{path: path, f: f, size: fi.Size()}
	if b.size == 0 {
		f.Close()
		return nil, fmt.Errorf("breached password list %s is empty", path)
	}
	var buf [2 * maxBreachedLine]byte
	if _, _, _, err := b.lineAt(0, buf[:]); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// Close closes the file.
func (b *BreachedList) Close() error {
	return b.f.Close()
}

// Contains reports whether password's SHA-1 is in the list. An error names
// the byte offset of the malformed line the search met.
func (b *BreachedList) Contains(password string) (bool, error) {
	target := sha1.Sum([]byte(password))
	var buf [2 * maxBreachedLine]byte
	// f(x) is the hash of the first line starting at or after byte x; it
	// rises with x in a sorted file. Invariant: f(x) < target for x < lo,
	// f(x) > target for x ≥ hi.
	lo, hi := int64(0), b.size
	for lo < hi {
		mid := lo + (hi-lo)/2
		start, _, h, err := b.lineAt(mid, buf[:])
		if errors.Is(err, errNoLine) {
			hi = mid
			continue
		}
		if err != nil {
			return false, err
		}
		switch c := bytes.Compare(h[:], target[:]); {
		case c == 0:
			return true, nil
		case c < 0:
			lo = start + 1 // f is h for every x in (mid, start]
		default:
			hi = mid
		}
	}
	return false, nil
}

// lineAt reads the first line starting at or after off and returns its
// start, the offset just past it, and its hash.
func (b *BreachedList) lineAt(off int64, buf []byte) (start, next int64, hash [sha1.Size]byte, err error) {
	pos := max(off-1, 0)
	n, err := b.f.ReadAt(buf, pos)
	if err != nil && err != io.EOF {
		return 0, 0, hash, fmt.Errorf("read breached password list %s at offset %d: %w", b.path, pos, err)
	}
	data := buf[:n]
	atEOF := pos+int64(n) == b.size
	start = pos
	if off > 0 { // skip to the start of the next line
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if atEOF {
				return 0, 0, hash, errNoLine
			}
			return 0, 0, hash, fmt.Errorf("breached password list %s: line around offset %d is longer than %d bytes", b.path, off, maxBreachedLine)
		}
		start, data = pos+int64(i)+1, data[i+1:]
	}
	if start >= b.size {
		return 0, 0, hash, errNoLine
	}
	end := bytes.IndexByte(data, '\n')
	if end < 0 && !atEOF { // the line runs past the buffer: read it from its start
		n, err = b.f.ReadAt(buf, start)
		if err != nil && err != io.EOF {
			return 0, 0, hash, fmt.Errorf("read breached password list %s at offset %d: %w", b.path, start, err)
		}
		data, atEOF = buf[:n], start+int64(n) == b.size
		if end = bytes.IndexByte(data, '\n'); end < 0 && !atEOF {
			return 0, 0, hash, fmt.Errorf("breached password list %s: line at offset %d is longer than %d bytes", b.path, start, maxBreachedLine)
		}
	}
	line := data
	next = start + int64(len(data))
	if end >= 0 {
		line, next = data[:end], start+int64(end)+1
	}
	if hash, err = parseBreachedLine(line); err != nil {
		return 0, 0, hash, fmt.Errorf("breached password list %s: malformed line at offset %d: %w", b.path, start, err)
	}
	return start, next, hash, nil
}

// parseBreachedLine reads "SHA1HEX:COUNT", with or without a trailing "\r".
func parseBreachedLine(line []byte) (hash [sha1.Size]byte, err error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < sha1HexLen+2 || line[sha1HexLen] != ':' {
		return hash, fmt.Errorf("%q: want 40 hex digits, a colon and a count", truncate(line, 64))
	}
	if _, err := hex.Decode(hash[:], line[:sha1HexLen]); err != nil {
		return hash, fmt.Errorf("%q: hash is not hexadecimal", truncate(line, 64))
	}
	count := line[sha1HexLen+1:]
	if len(count) > 20 {
		return hash, fmt.Errorf("%q: count longer than 20 digits", truncate(line, 64))
	}
	for _, c := range count {
		if c < '0' || c > '9' {
			return hash, fmt.Errorf("%q: count is not a decimal number", truncate(line, 64))
		}
	}
	return hash, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Verify reads the whole file once and reports the first malformed or
// out-of-order line by number: a check to run after a download, since a
// lookup in an unsorted file silently misses passwords.
func (b *BreachedList) Verify() error {
	r := bufio.NewReaderSize(io.NewSectionReader(b.f, 0, b.size), 1<<16)
	var prev [sha1.Size]byte
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("breached password list %s: line %d is longer than %d bytes", b.path, n, r.Size())
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read breached password list %s: %w", b.path, err)
		}
		h, perr := parseBreachedLine(bytes.TrimSuffix(line, []byte("\n")))
		if perr != nil {
			return fmt.Errorf("breached password list %s: line %d: %w", b.path, n, perr)
		}
		if n > 1 && bytes.Compare(h[:], prev[:]) < 0 {
			return fmt.Errorf("breached password list %s: line %d sorts before line %d: the file must be sorted by hash", b.path, n, n-1)
		}
		prev = h
		if err == io.EOF {
			return nil
		}
	}
}
