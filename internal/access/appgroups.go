package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ParseAppGroups reads the members of the Office365 and
// MicrosoftAdminPortals application groups, for CompileOptions.AppGroups,
// from Verity's reference file (conditional-access-app-groups.json): a
// top-level object per group holding members[].appIds and, for the admin
// portals, docAppIds[].appId (the ids Microsoft publishes). Everything else
// in the file (names, provenance) is informational and not read. Ids are
// lower-cased, sorted and deduplicated.
func ParseAppGroups(data []byte) (map[string][]string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse app groups: %w", err)
	}
	out := map[string][]string{}
	for _, name := range []string{Office365, MicrosoftAdminPortals} {
		raw, ok := doc[name]
		if !ok {
			continue
		}
		var g struct {
			Members []struct {
				AppIDs []string `json:"appIds"`
			} `json:"members"`
			DocAppIDs []struct {
				AppID string `json:"appId"`
			} `json:"docAppIds"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, fmt.Errorf("parse app groups: %s: %w", name, err)
		}
		var ids []string
		for _, m := range g.Members {
			ids = append(ids, m.AppIDs...)
		}
		for _, d := range g.DocAppIDs {
			ids = append(ids, d.AppID)
		}
		for i, id := range ids {
			if err := checkGUID(name, id); err != nil {
				return nil, fmt.Errorf("parse app groups: %w", err)
			}
			ids[i] = strings.ToLower(id)
		}
		slices.Sort(ids)
		out[name] = slices.Compact(ids)
	}
	return out, nil
}
