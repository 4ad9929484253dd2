package condition_test

import (
	"fmt"

	"github.com/verityhq/verity/internal/rbac/condition"
)

func Example() {
	c, err := condition.Parse(`((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR
 (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635}))`)
	if err != nil {
		fmt.Println(err)
		return
	}
	owner, _ := condition.ParseGUID("8e3af657-a8ff-443c-a75c-2fe8c4bcb635")
	req := &condition.Request{
		Action:  "Microsoft.Authorization/roleAssignments/write",
		Request: condition.Attributes{"Microsoft.Authorization/roleAssignments:RoleDefinitionId": {condition.GUIDValue(owner)}},
	}
	ok, err := c.Evaluate(req)
	fmt.Println(ok, err)
	fmt.Println(c)

	_, err = condition.Parse("@Resource[x] StringEquals 'a' AND Exists @Resource[y] OR Exists @Resource[z]")
	fmt.Println(err)
	// Output:
	// false <nil>
	// !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'}) OR @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635}
	// condition: position 55: OR after AND: mixing AND and OR needs parentheses, as in (a AND b) OR c
}
