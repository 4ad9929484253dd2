package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// sweepReviews runs the access review sweep the node runs, on the env's
// store and directory, under the API's removal rule.
func (e *env) sweepReviews() pim.ReviewSweep {
	e.t.Helper()
	svc := pim.New(e.st)
	svc.Groups = func(id string) []string { return e.live.Current().Directory().TransitiveMemberOf(id) }
	n, err := pim.NewReviews(svc, api.RemovalGuard).Sweep(context.Background())
	if err != nil {
		e.t.Fatalf("sweep: %v", err)
	}
	return n
}

type reviewItemView struct {
	ID, Decision, ApplyResult, ApplyDescription string
	AssignmentID                                string
	Principal                                   struct{ ID, DisplayName string }
}

// TestReviewsOverAPI: an administrator of the scope creates a review
// (bad JSON, unknown fields and invalid settings refused with their
// paths; callers without roleAssignments/write refused); the instance
// starts with the sweep; the reviewer finds the item among hers and
// denies it — the principal herself and others cannot; the instance is
// stopped and applied by the administrator, and the assignment is gone.
// A review that would remove the last Owner leaves it, with the reason.
// Every step is in the audit log.
func TestReviewsOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	const password = "correct horse battery staple 7"
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	e.createUser("carol@contoso.com")
	for _, u := range []string{"alice@contoso.com", "bob@contoso.com", "carol@contoso.com"} {
		e.admin("POST", "/api/v1/users/"+u+"/password", map[string]any{"password": password}).want(http.StatusNoContent)
	}
	aliceTok, _ := e.login("alice@contoso.com", password)
	bobTok, _ := e.login("bob@contoso.com", password)
	carolTok, _ := e.login("carol@contoso.com", password)
	const scope = "/apps/payroll"
	var assignment struct{ ID string }
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": "Contributor", "scope": scope}).
		want(http.StatusCreated).decode(&assignment)
	var bobs struct{ ID string } // the reviewer's own access is under review too, not by him
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": bob, "roleDefinitionId": "Reader", "scope": scope + "/reports"}).
		want(http.StatusCreated).decode(&bobs)

	start := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	def := func(scope string, roles ...string) map[string]any {
		return map[string]any{"displayName": "Payroll access", "descriptionForReviewers": "Who still needs payroll?",
			"scope":     map[string]any{"resourceScope": scope, "roleKind": "rbac", "roleDefinitionIds": roles},
			"reviewers": []string{bob},
			"settings": map[string]any{"recurrence": map[string]any{"type": "onetime", "startDate": start}, "instanceDurationInDays": 7,
				"defaultDecisionEnabled": true, "defaultDecision": "Deny", "justificationRequiredOnApproval": true}}
	}
	const defs = "/api/v1/accessReviews/definitions"
	e.admin("POST", defs, `{"displayName": "x", `).problem(http.StatusBadRequest, "InvalidRequest", "")
	e.admin("POST", defs, `{"displayName": "x", "scope": {"resourceScop": "/"}}`).problem(http.StatusBadRequest, "InvalidRequest", "scope.resourceScop")
	e.admin("POST", defs, `{"displayName": "x", "settings": {"instanceDurationInDays": "7"}}`).problem(http.StatusBadRequest, "InvalidRequest", "settings.instanceDurationInDays")
	e.admin("POST", defs, `{"displayName": "x", "reviewers": "bob"}`).problem(http.StatusBadRequest, "InvalidRequest", "reviewers")
	withID := def(scope)
	withID["id"] = "mine"
	e.admin("POST", defs, withID).problem(http.StatusBadRequest, "InvalidRequest", "id")
	withPruned := def(scope)
	withPruned["pruned"] = map[string]any{"instances": 3}
	e.admin("POST", defs, withPruned).problem(http.StatusBadRequest, "InvalidRequest", "pruned")
	noReviewers := def(scope)
	delete(noReviewers, "reviewers")
	e.admin("POST", defs, noReviewers).problem(http.StatusBadRequest, "InvalidAccessReview", "reviewers")
	e.admin("POST", defs, def(scope, "Chief Wizard")).problem(http.StatusBadRequest, "InvalidAccessReview", "scope.roleDefinitionIds[0]")
	e.call(carolTok, "POST", defs, def(scope)).problem(http.StatusForbidden, "Forbidden", "")
	e.call(aliceTok, "POST", defs, def(scope)).problem(http.StatusForbidden, "Forbidden", "")

	var d struct {
		ID, Status string
		CreatedBy  struct{ ID string }
	}
	created := e.admin("POST", defs, def(scope))
	created.want(http.StatusCreated).decode(&d)
	if d.Status != "NotStarted" || d.CreatedBy.ID != e.adminID || created.header.Get("Location") != defs+"/"+d.ID {
		t.Fatalf("created %+v %s", d, created.header.Get("Location"))
	}
	var list struct{ Value []struct{ ID string } }
	e.call(carolTok, "GET", defs, nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 0 {
		t.Fatalf("carol sees %+v", list.Value)
	}
	e.call(carolTok, "GET", defs+"/"+d.ID, nil).problem(http.StatusNotFound, "NotFound", "")
	e.call(bobTok, "GET", defs, nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 1 || list.Value[0].ID != d.ID {
		t.Fatalf("bob, a reviewer, sees %+v", list.Value)
	}

	if n := e.sweepReviews(); n.Started != 1 {
		t.Fatalf("sweep %+v", n)
	}
	var insts struct {
		Value []struct{ ID, Status string }
	}
	e.call(bobTok, "GET", defs+"/"+d.ID+"/instances", nil).want(http.StatusOK).decode(&insts)
	if len(insts.Value) != 1 || insts.Value[0].Status != "InProgress" {
		t.Fatalf("instances %+v", insts.Value)
	}
	inst := "/api/v1/accessReviews/instances/" + insts.Value[0].ID
	var mine struct {
		Value    []reviewItemView
		NextLink string `json:"@odata.nextLink"`
	}
	e.call(bobTok, "GET", "/api/v1/accessReviews/decisions/me?decision=NotReviewed", nil).want(http.StatusOK).decode(&mine)
	if len(mine.Value) != 1 || mine.Value[0].Principal.ID != alice || mine.Value[0].Principal.DisplayName != "alice@contoso.com" ||
		mine.Value[0].AssignmentID != assignment.ID {
		t.Fatalf("bob's pending decisions %+v", mine.Value)
	}
	item := "/api/v1/accessReviews/decisions/" + mine.Value[0].ID
	e.call(aliceTok, "GET", "/api/v1/accessReviews/decisions/me", nil).want(http.StatusOK).decode(&mine)
	if len(mine.Value) != 0 {
		t.Fatalf("alice may decide %+v", mine.Value)
	}
	e.call(aliceTok, "POST", item, map[string]any{"decision": "Approve", "justification": "I need it"}).problem(http.StatusForbidden, "NotReviewer", "")
	e.call(carolTok, "POST", item, map[string]any{"decision": "Deny"}).problem(http.StatusForbidden, "NotReviewer", "")
	e.call(bobTok, "POST", item, `{"decison": "Deny"}`).problem(http.StatusBadRequest, "InvalidRequest", "decison")
	e.call(bobTok, "POST", item, `{"decision": true}`).problem(http.StatusBadRequest, "InvalidRequest", "decision")
	e.call(bobTok, "POST", item, map[string]any{"decision": "Approve"}).problem(http.StatusBadRequest, "InvalidAccessReview", "justification")
	e.call(bobTok, "POST", item, map[string]any{"decision": "Maybe"}).problem(http.StatusBadRequest, "InvalidAccessReview", "decision")
	e.call(bobTok, "POST", "/api/v1/accessReviews/decisions/nope", map[string]any{"decision": "Deny"}).problem(http.StatusNotFound, "NotFound", "")
	var decided reviewItemView
	e.call(bobTok, "POST", item, map[string]any{"decision": "Deny", "justification": "moved to sales"}).want(http.StatusOK).decode(&decided)
	if decided.Decision != "Deny" {
		t.Fatalf("decided %+v", decided)
	}
	var all struct{ Value []reviewItemView }
	e.admin("GET", inst+"/decisions?decision=Deny", nil).want(http.StatusOK).decode(&all)
	if len(all.Value) != 1 || all.Value[0].Principal.ID != alice {
		t.Fatalf("the administrator's view of the denials %+v", all.Value)
	}
	e.admin("GET", inst+"/decisions?$top=1", nil).want(http.StatusOK).decode(&mine)
	if len(mine.Value) != 1 || mine.NextLink == "" {
		t.Fatalf("the first page %+v", mine)
	}
	first, next := mine.Value[0].ID, mine.NextLink
	mine.Value, mine.NextLink = nil, ""
	e.admin("GET", next, nil).want(http.StatusOK).decode(&mine)
	if len(mine.Value) != 1 || mine.Value[0].ID == first || mine.NextLink != "" {
		t.Fatalf("the second page %+v", mine)
	}
	e.call(carolTok, "GET", inst+"/decisions", nil).want(http.StatusOK).decode(&all)
	if len(all.Value) != 0 {
		t.Fatalf("carol sees %+v", all.Value)
	}
	e.admin("GET", inst+"/decisions?filter=everything", nil).problem(http.StatusBadRequest, "InvalidRequest", "filter")
	e.admin("GET", inst+"/decisions?$top=5000", nil).problem(http.StatusBadRequest, "InvalidRequest", "$top")

	e.call(bobTok, "POST", inst+"/stop", nil).problem(http.StatusForbidden, "Forbidden", "")
	e.call(carolTok, "POST", inst+"/stop", nil).problem(http.StatusNotFound, "NotFound", "")
	e.admin("POST", inst+"/applyDecisions", nil).problem(http.StatusConflict, "AccessReviewNotCompleted", "")
	var stopped struct{ Status string }
	e.admin("POST", inst+"/stop", nil).want(http.StatusOK).decode(&stopped)
	if stopped.Status != "Completed" {
		t.Fatalf("stopped %+v", stopped)
	}
	e.call(bobTok, "POST", item, map[string]any{"decision": "Approve", "justification": "changed my mind"}).problem(http.StatusConflict, "AccessReviewNotInProgress", "")
	if _, err := e.st.Get(context.Background(), rbac.Kind, assignment.ID); err != nil {
		t.Fatalf("the assignment went before the decisions were applied: %v", err)
	}
	var applied struct{ Status string }
	e.admin("POST", inst+"/applyDecisions", nil).want(http.StatusOK).decode(&applied)
	if applied.Status != "Applied" {
		t.Fatalf("applied %+v", applied)
	}
	for _, id := range []string{assignment.ID, bobs.ID} { // bob's by the default decision
		if _, err := e.st.Get(context.Background(), rbac.Kind, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the denied assignment %s is still there: %v", id, err)
		}
	}

	// The last Owner stays, as the API's own delete would keep it.
	var owners struct{ ID string }
	e.admin("POST", defs, def("/", "Owner")).want(http.StatusCreated).decode(&owners)
	e.sweepReviews()
	e.admin("GET", defs+"/"+owners.ID+"/instances", nil).want(http.StatusOK).decode(&insts)
	ownerInst := "/api/v1/accessReviews/instances/" + insts.Value[0].ID
	e.admin("POST", ownerInst+"/stop", nil).want(http.StatusOK)
	e.admin("POST", ownerInst+"/applyDecisions", nil).want(http.StatusOK)
	e.admin("GET", ownerInst+"/decisions", nil).want(http.StatusOK).decode(&all)
	if len(all.Value) != 1 || all.Value[0].Principal.ID != e.adminID || all.Value[0].ApplyResult != "Failed" ||
		!strings.Contains(all.Value[0].ApplyDescription, "no enabled user with the Owner role") {
		t.Fatalf("the Owner's item %+v", all.Value)
	}
	e.admin("GET", "/api/v1/me", nil).want(http.StatusOK)
	e.admin("GET", "/api/v1/users", nil).want(http.StatusOK) // still Owner

	e.call(bobTok, "DELETE", defs+"/"+d.ID, nil).problem(http.StatusForbidden, "Forbidden", "")
	e.admin("DELETE", defs+"/"+d.ID, nil).want(http.StatusNoContent)
	e.admin("GET", defs+"/"+d.ID, nil).problem(http.StatusNotFound, "NotFound", "")
	e.admin("GET", inst, nil).problem(http.StatusNotFound, "NotFound", "")

	actions := map[string]string{}
	for _, ev := range e.audit() {
		actions[ev.Action] = ev.Actor
	}
	for action, actor := range map[string]string{"accessReview.createDefinition": e.adminID, "accessReview.start": pim.ReviewActor,
		"accessReview.recordDecision": bob, "accessReview.stop": e.adminID, "accessReview.applyDecision": e.adminID,
		"accessReview.apply": e.adminID, "accessReview.deleteDefinition": e.adminID} {
		if actions[action] != actor {
			t.Errorf("%s recorded by %q; want %q", action, actions[action], actor)
		}
	}
}

// TestReviewNotifyOverAPI: a definition's webhooks are read strictly and
// checked with their path; its audit record names them by scheme, host
// and digest, never by the path or query that carry the receiver's token;
// an administrator of the scope reads them back, a reviewer does not.
func TestReviewNotifyOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	const password = "correct horse battery staple 7"
	bob := e.createUser("bob@contoso.com")
	e.admin("POST", "/api/v1/users/bob@contoso.com/password", map[string]any{"password": password}).want(http.StatusNoContent)
	bobTok, _ := e.login("bob@contoso.com", password)
	const hook = "https://hooks.example.com/services/T0KEN/B0KEN?code=s3cr3t"
	def := func(notify any, settings map[string]any) map[string]any {
		s := map[string]any{"recurrence": map[string]any{"type": "onetime", "startDate": time.Now().UTC().Format(time.RFC3339)},
			"instanceDurationInDays": 7}
		for k, v := range settings {
			s[k] = v
		}
		return map[string]any{"displayName": "Payroll access", "scope": map[string]any{"resourceScope": "/apps/payroll"},
			"reviewers": []string{bob}, "notify": notify, "settings": s}
	}
	mail := map[string]any{"mailNotificationsEnabled": true}
	const defs = "/api/v1/accessReviews/definitions"
	e.admin("POST", defs, def("https://hooks.example.com/x", mail)).problem(http.StatusBadRequest, "InvalidRequest", "notify")
	e.admin("POST", defs, def([]string{hook}, map[string]any{"reminderNotificationsEnabled": "yes"})).
		problem(http.StatusBadRequest, "InvalidRequest", "settings.reminderNotificationsEnabled")
	e.admin("POST", defs, def([]string{hook, "ftp://hooks.example.com/x"}, mail)).problem(http.StatusBadRequest, "InvalidAccessReview", "notify[1]")
	e.admin("POST", defs, def([]string{hook, hook}, mail)).problem(http.StatusBadRequest, "InvalidAccessReview", "notify[1]")
	e.admin("POST", defs, def([]string{hook}, nil)).problem(http.StatusBadRequest, "InvalidAccessReview", "notify")

	var created struct {
		ID       string
		Notify   []string
		Settings struct{ MailNotificationsEnabled, ReminderNotificationsEnabled bool }
	}
	e.admin("POST", defs, def([]string{hook}, mail)).want(http.StatusCreated).decode(&created)
	if !slices.Equal(created.Notify, []string{hook}) || !created.Settings.MailNotificationsEnabled || created.Settings.ReminderNotificationsEnabled {
		t.Fatalf("created %+v", created)
	}
	var read struct{ Notify []string }
	e.admin("GET", defs+"/"+created.ID, nil).want(http.StatusOK).decode(&read)
	if !slices.Equal(read.Notify, []string{hook}) {
		t.Fatalf("the administrator reads %v", read.Notify)
	}
	for _, path := range []string{defs + "/" + created.ID, defs} {
		if got := e.call(bobTok, "GET", path, nil).want(http.StatusOK); strings.Contains(string(got.body), "hooks.example.com") {
			t.Fatalf("a reviewer reads the webhooks at %s: %s", path, got.body)
		}
	}

	found := false
	for _, ev := range e.audit() {
		line := ev.Target + " " + string(ev.Details)
		for _, leak := range []string{"T0KEN", "B0KEN", "s3cr3t", "/services/"} {
			if strings.Contains(line, leak) {
				t.Errorf("the audit record %s holds %q", ev.Action, leak)
			}
		}
		if ev.Action == "accessReview.createDefinition" {
			var d struct{ Notify []string }
			if err := json.Unmarshal(ev.Details, &d); err != nil || len(d.Notify) != 1 || !strings.HasPrefix(d.Notify[0], "https://hooks.example.com (") {
				t.Fatalf("the record names the webhooks %v %v", d.Notify, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no accessReview.createDefinition record")
	}
}
