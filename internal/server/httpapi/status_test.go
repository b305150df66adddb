package httpapi

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/server"
)

// apiCodes reads the values of every Code* constant of internal/api.
func apiCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../api/api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				codes[n.Name], _ = strconv.Unquote(lit.Value)
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d error codes in internal/api", len(codes))
	}
	return codes
}

// TestEveryCodeHasAStatus: a code added to internal/api without a status
// here would be answered 500.
func TestEveryCodeHasAStatus(t *testing.T) {
	for name, code := range apiCodes(t) {
		if _, ok := statuses[code]; !ok {
			t.Errorf("api.%s (%q) has no HTTP status in statuses", name, code)
		}
	}
}

// TestDocsErrorTable holds docs/api.md's table of errors to statuses: each
// row is the status its code is answered with.
func TestDocsErrorTable(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\|")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 10 {
		t.Fatalf("found only %d rows of the error table in docs/api.md", len(rows))
	}
	for _, r := range rows {
		status, _ := strconv.Atoi(r[1])
		err := error(&server.Error{Code: r[2], Message: "x"})
		if status == 415 || status == 411 {
			// The statuses that are not their code's (readBody, and a
			// blob chunk's length).
			err = &statusError{status, &server.Error{Code: r[2]}}
		}
		if got := StatusOf(err); got != status {
			t.Errorf("docs/api.md says %d %s; answered %d", status, r[2], got)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&server.Error{Code: api.CodeNotFound}, 404, api.CodeNotFound},
		{fmt.Errorf("wrapped: %w", &server.Error{Code: api.CodeMailboxFull}), 409, api.CodeMailboxFull},
		{&server.Error{Code: "no_such_code", Message: "secret detail"}, 500, api.CodeInternal},
		{errors.New("open /var/lib/hushd: permission denied"), 500, api.CodeInternal},
	} {
		status, e := apiError(c.err)
		if status != c.status || e.Code != c.code {
			t.Errorf("%v: answered %d %s, want %d %s", c.err, status, e.Code, c.status, c.code)
		}
		if c.status == 500 && e.Message != "internal error" {
			t.Errorf("%v: a 500 says %q", c.err, e.Message)
		}
	}
}

// TestContentType: a body that is not JSON is a 415 bad_request, before
// anything else is looked at.
func TestContentType(t *testing.T) {
	h := endpoint(200, func(*http.Request, server.Principal, api.Login) (none, error) {
		t.Error("the endpoint was called")
		return none{}, nil
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/login", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "text/plain")
	h(w, r, server.Principal{})
	if w.Code != 415 || !strings.Contains(w.Body.String(), `"code":"bad_request"`) {
		t.Errorf("got %d %s, want 415 bad_request", w.Code, w.Body)
	}
}
