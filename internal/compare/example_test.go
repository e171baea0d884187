package compare_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/miffy-proxy/miffy/internal/compare"
)

func ExampleComparer_Compare() {
	c, err := compare.New(compare.Rules{
		Ignore:    []string{"$.generated_at"},
		Unordered: []string{"$.items by id"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	h := http.Header{"Content-Type": {"application/json"}}
	ref := compare.Response{Status: 200, Header: h, Body: []byte(
		`{"generated_at":"12:00","items":[{"id":1,"price":10},{"id":2,"price":20.0}],"total":30}`)}
	cand := compare.Response{Status: 200, Header: h, Body: []byte(
		`{"total":31,"items":[{"id":2,"price":20},{"id":1,"price":11}],"generated_at":"12:01"}`)}
	for _, d := range c.Compare(ref, cand) {
		out, _ := json.Marshal(d)
		fmt.Println(string(out))
	}
	// Output:
	// {"path":"$.items[0].price","kind":"changed","reference":10,"candidate":11}
	// {"path":"$.total","kind":"changed","reference":30,"candidate":31}
}

func ExampleJudge_Classify() {
	j := compare.NewJudge(compare.NoiseConfig{}, time.Now)
	cand := []compare.Diff{
		{Path: "$.generated_at", Kind: compare.Changed},
		{Path: "$.items[0].price", Kind: compare.Changed},
	}
	sec := []compare.Diff{{Path: "$.generated_at", Kind: compare.Changed}}
	diffs, allNoise := j.Classify("GET /items", cand, sec, true)
	for _, d := range diffs {
		fmt.Println(d.Path, d.Class)
	}
	fmt.Println("all noise:", allNoise)
	// Output:
	// $.generated_at noise
	// $.items[0].price regression
	// all noise: false
}

func ExampleRules_Validate() {
	r := compare.Rules{Ignore: []string{"$.ok", "$.a["}}
	fmt.Println(r.Validate())
	// Output:
	// ignore[1]: invalid path "$.a[": at offset 3: missing ]
}
