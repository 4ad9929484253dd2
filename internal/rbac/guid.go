package rbac

// guidKey is a GUID's 16 bytes. Principal ids are GUIDs in practice; a map
// keyed by them holds the key in the map's own slots, so a lookup costs
// one cache miss fewer than a map of strings, and needs no lower-casing.
type guidKey [16]byte

// parseGUIDKey reads the canonical 36-character form, either case.
func parseGUIDKey(s string) (k guidKey, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return k, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := hexVal(s[i])
		lo, ok2 := hexVal(s[i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[j] = hi<<4 | lo
		j++
		i += 2
	}
	return k, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// lookupPrincipal finds an interned principal id without allocating;
// buf is scratch for lower-casing ids that are not GUIDs.
func (e *Engine) lookupPrincipal(id string, buf []byte) (int32, []byte, bool) {
	if k, ok := parseGUIDKey(id); ok {
		p, found := e.guidIndex[k]
		return p, buf, found
	}
	buf = lower(buf, id)
	p, found := e.principalIndex[string(buf)]
	return p, buf, found
}
