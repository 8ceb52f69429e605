package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// stdinName is how `-f -` is named in messages.
const stdinName = "<stdin>"

// manifestExtensions are the file name endings read from a directory.
// A file named explicitly is read whatever its name.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// inputFile is one manifest file to decode.
type inputFile struct {
	// name is the path as the user wrote it (or found under a directory),
	// stdinName for standard input.
	name string
	data []byte
}

// source is where a judged object comes from: a file, the 1-based
// document in it, the line the object starts on and, inside a List, the
// item. The zero source (File "") is a live object.
type source struct {
	File     string `json:"file"`
	Document int    `json:"document,omitempty"`
	Line     int    `json:"line,omitempty"`
	// Item is the 1-based path of the item inside Lists, "2" or "2.1".
	Item string `json:"item,omitempty"`
}

// String is "FILE#DOCUMENT:LINE" (with "/ITEM" inside a List), "-" for a
// live object.
func (s source) String() string {
	if s.File == "" {
		return "-"
	}
	out := s.File + "#" + strconv.Itoa(s.Document)
	if s.Item != "" {
		out += "/" + s.Item
	}
	return out + ":" + strconv.Itoa(s.Line)
}

// decodedObject is one typed object with where it came from.
type decodedObject struct {
	obj runtime.Object
	src source
	// where is "<file>: document N" (and ", item I" inside a List), for
	// notes and errors.
	where string
	// gvk is the document's apiVersion and kind.
	gvk schema.GroupVersionKind
	// unregistered holds a document of a kind policy.Scheme does not know
	// (obj nil, skipped set): a kind a policy may declare.
	unregistered *unstructured.Unstructured
	// unknownFields lists the fields of the document that obj has no place
	// for ("" when none): a note for workloads, an error for policies.
	unknownFields string
	// skipped, when obj is nil, says why the document was not decoded (a
	// kind policy.Scheme does not know); it becomes a note on ErrOut.
	skipped string
}

// readInputs expands the -f arguments into files: a file is read as is, a
// directory yields its .yaml, .yml and .json files (and those of its
// subdirectories when recursive), "-" reads in once. Files come in argument
// order, then lexical order within a directory.
func readInputs(paths []string, recursive bool, in io.Reader) ([]inputFile, error) {
	var files []inputFile
	stdinRead := false
	for _, p := range paths {
		if p == "-" {
			if stdinRead {
				return nil, errors.New("-f -: standard input given more than once: pass it once")
			}
			stdinRead = true
			if in == nil {
				return nil, errors.New("-f -: no standard input to read")
			}
			data, err := io.ReadAll(in)
			if err != nil {
				return nil, fmt.Errorf("-f -: reading standard input: %w", err)
			}
			files = append(files, inputFile{name: stdinName, data: data})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("-f %s: no such file or directory: check the path", p)
			}
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("-f %s: %w", p, err)
			}
			files = append(files, inputFile{name: p, data: data})
			continue
		}
		found, err := readDir(p, recursive)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			hint := ""
			if !recursive && hasSubdirectory(p) {
				hint = " (add -R to read its subdirectories)"
			}
			return nil, fmt.Errorf("-f %s: directory has no %s files%s", p, strings.Join(manifestExtensions, ", "), hint)
		}
		files = append(files, found...)
	}
	return files, nil
}

// readDir returns the manifest files under dir in lexical order.
func readDir(dir string, recursive bool) ([]inputFile, error) {
	var files []inputFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("-f %s: %w", dir, err)
		}
		if d.IsDir() {
			if path != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if !hasManifestExtension(path) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("-f %s: %w", path, err)
		}
		files = append(files, inputFile{name: path, data: data})
		return nil
	})
	return files, err
}

func hasSubdirectory(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}

func hasManifestExtension(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range manifestExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// document is one YAML or JSON document of a file.
type document struct {
	// index is the 1-based number of the document in its file, counting
	// only documents with content.
	index int
	// line is the 1-based line of the file where the document's content
	// starts.
	line int
	// base is the file line of the first line of data: the YAML parser
	// counts lines from there.
	base int
	data []byte
}

// splitDocuments cuts a file into documents: a stream of JSON values when it
// starts with '{', else YAML documents separated by "---" lines. Documents
// with nothing but blank lines and comments are dropped.
func splitDocuments(name string, data []byte) ([]document, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(name, data)
	}
	var docs []document
	var cur bytes.Buffer
	start, first, lineNo, content := 1, 1, 0, false
	flush := func() {
		if content {
			docs = append(docs, document{index: len(docs) + 1, line: first, base: start, data: append([]byte(nil), cur.Bytes()...)})
		}
		cur.Reset()
		content = false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if isDocumentSeparator(line) {
			flush()
			start = lineNo + 1
			continue
		}
		if !content {
			t := strings.TrimSpace(line)
			if t == "" || strings.HasPrefix(t, "#") || t == "..." {
				// Leading blank and comment lines: the document starts later,
				// which keeps reported lines exact.
				cur.WriteString("\n")
				continue
			}
			content, first = true, lineNo
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	flush()
	return docs, nil
}

func isDocumentSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := line[3:]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r'
}

// splitJSON cuts a stream of JSON values into documents.
func splitJSON(name string, data []byte) ([]document, error) {
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		before := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		index := len(docs) + 1
		if err != nil {
			offset := before
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				offset = syn.Offset
			}
			return nil, fmt.Errorf("%s: document %d, line %d: %s", name, index, lineAt(data, offset), strings.TrimPrefix(err.Error(), "json: "))
		}
		// The value starts after any whitespace the decoder skipped.
		start := before
		for start < int64(len(data)) && strings.ContainsRune(" \t\r\n", rune(data[start])) {
			start++
		}
		l := lineAt(data, start)
		docs = append(docs, document{index: index, line: l, base: l, data: raw})
	}
}

// lineAt returns the 1-based line of byte offset in data.
func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

// yamlLineError matches the line number in a YAML parser error.
var yamlLineError = regexp.MustCompile(`^(?:error converting YAML to JSON: )?yaml: line (\d+): (.*)$`)

// strictSerializer decodes the kinds of policy.Scheme and reports unknown
// and duplicate fields as strict decoding errors next to the object.
var strictSerializer = serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, policy.Scheme, policy.Scheme,
	serializerjson.SerializerOptions{Strict: true})

// decodeFile decodes every document of f into typed objects. Syntax errors,
// documents without apiVersion or kind and values of the wrong type are
// errors naming the file, document and line. Documents of kinds
// policy.Scheme does not know come back with a nil obj and skipped set,
// unknown fields with their object; the caller decides. The order is the
// order of the file.
func decodeFile(f inputFile) ([]decodedObject, error) {
	if !isText(f.data) {
		return nil, fmt.Errorf("%s: not a text file (binary data): manifests are YAML or JSON; leave it out of -f or rename it", f.name)
	}
	docs, err := splitDocuments(f.name, f.data)
	if err != nil {
		return nil, err
	}
	var objs []decodedObject
	for _, d := range docs {
		where := fmt.Sprintf("%s: document %d", f.name, d.index)
		if len(d.data) > maxDocumentBytes {
			return nil, fmt.Errorf("%s, line %d: the document is %s, more than the %s the API server takes per object: split it, or leave it out of -f",
				where, d.line, mib(len(d.data)), mib(maxDocumentBytes))
		}
		js, err := yaml.YAMLToJSON(d.data)
		if err != nil {
			return nil, yamlError(where, d, err)
		}
		o, err := decodeJSON(js, where, d.line, "", schema.GroupVersionKind{})
		if err != nil {
			return nil, err
		}
		for i := range o {
			o[i].src.File, o[i].src.Document, o[i].src.Line = f.name, d.index, d.line
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// maxDocumentBytes is the largest document decoded: the API server takes
// requests of at most 3 MiB, so a larger document can never be applied.
const maxDocumentBytes = 3 << 20

func mib(n int) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// isText reports whether data looks like text: no NUL byte in its first
// 8 KiB, as git and grep decide.
func isText(data []byte) bool {
	head := data
	if len(head) > 8<<10 {
		head = head[:8<<10]
	}
	return bytes.IndexByte(head, 0) < 0
}

// templateAction matches a Go template action, the mark of a Helm chart's
// templates/ file that was not rendered.
var templateAction = regexp.MustCompile(`\{\{-?\s*[^}]*\}\}`)

// yamlError names the file line of a YAML syntax error: the parser counts
// lines from d.base; an error without a line is put on the document's
// first line. An unrendered Helm template and an alias bomb get a message
// of their own: the parser's says nothing a user can act on.
func yamlError(where string, d document, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	if loc := templateAction.FindIndex(d.data); loc != nil {
		line := d.base + bytes.Count(d.data[:loc[0]], []byte("\n"))
		return fmt.Errorf("%s, line %d: an unrendered Helm template (%s): render the chart first, for example helm template RELEASE CHART | kubectl dc check -f -",
			where, line, strings.TrimSpace(string(d.data[loc[0]:loc[1]])))
	}
	if strings.Contains(msg, "excessive aliasing") {
		return fmt.Errorf("%s, line %d: the document expands YAML aliases (*name) far beyond its size, as an alias bomb does: write the values out or remove the aliases", where, d.line)
	}
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return fmt.Errorf("%s, line %d: %s", where, d.base+n-1, m[2])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.HasPrefix(msg, "invalid map key") {
		msg = "a mapping used as a key: quote the key, or check the indentation"
	}
	return fmt.Errorf("%s, line %d: %s", where, d.line, msg)
}

// listHeader is what decoding needs to know of any document.
type listHeader struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// decodeJSON decodes one JSON object. Lists (v1 List and typed lists such
// as DeploymentList) are expanded into their items; items of a typed list
// may omit apiVersion and kind, which then come from the list (defaultGVK).
func decodeJSON(js []byte, where string, line int, item string, defaultGVK schema.GroupVersionKind) ([]decodedObject, error) {
	at := where + item
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%s, line %d: not a Kubernetes object: the document is %s, not a mapping with apiVersion and kind; is this a manifest? leave it out of -f",
			at, line, jsonKind(t))
	}
	var h listHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("%s, line %d: not a Kubernetes object: %s", at, line, decodeMessage(err))
	}
	if h.Kind == "" && defaultGVK.Kind != "" {
		h.Kind = defaultGVK.Kind
		if h.APIVersion == "" {
			h.APIVersion = defaultGVK.GroupVersion().String()
		}
		var err error
		if js, err = setTypeMeta(js, h.APIVersion, h.Kind); err != nil {
			return nil, fmt.Errorf("%s, line %d: %w", at, line, err)
		}
	}
	switch {
	case h.Kind == "":
		return nil, fmt.Errorf("%s, line %d: object has no kind: set kind (and apiVersion), for example kind: Deployment", at, line)
	case h.APIVersion == "":
		return nil, fmt.Errorf("%s, line %d: %s has no apiVersion: set apiVersion, for example apps/v1", at, line, h.Kind)
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("%s, line %d: apiVersion %q: %w", at, line, h.APIVersion, err)
	}
	if strings.HasSuffix(h.Kind, "List") && h.Items != nil {
		itemGVK := schema.GroupVersionKind{}
		if h.Kind != "List" {
			itemGVK = gv.WithKind(strings.TrimSuffix(h.Kind, "List"))
		}
		var objs []decodedObject
		for i, raw := range h.Items {
			o, err := decodeJSON(raw, where, line, fmt.Sprintf("%s, item %d", item, i+1), itemGVK)
			if err != nil {
				return nil, err
			}
			objs = append(objs, o...)
		}
		return objs, nil
	}
	obj, _, err := strictSerializer.Decode(js, nil, nil)
	unknown := ""
	if err != nil {
		switch {
		case runtime.IsNotRegisteredError(err):
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				return nil, fmt.Errorf("%s, line %d: %s%s: %s", at, line, h.Kind, nameSuffix(js), decodeMessage(err))
			}
			return []decodedObject{{where: at, gvk: gv.WithKind(h.Kind), unregistered: u, src: source{Item: itemPath(item)},
				skipped: fmt.Sprintf("skipped %s %s%s: not a kind kubectl dc check judges", h.APIVersion, h.Kind, nameSuffix(js))}}, nil
		case runtime.IsStrictDecodingError(err) && obj != nil:
			unknown = strictMessage(err)
		default:
			return nil, fmt.Errorf("%s, line %d: %s%s: %s", at, line, h.Kind, nameSuffix(js), decodeMessage(err))
		}
	}
	return []decodedObject{{obj: obj, where: at, gvk: gv.WithKind(h.Kind), unknownFields: unknown, src: source{Item: itemPath(item)}}}, nil
}

// itemPath turns ", item 2, item 1" into "2.1".
func itemPath(item string) string {
	if item == "" {
		return ""
	}
	return strings.Join(strings.Split(strings.TrimPrefix(item, ", item "), ", item "), ".")
}

// jsonKind names the JSON type of a value for messages: "a string", "a
// list", ...
func jsonKind(js []byte) string {
	if len(js) == 0 {
		return "empty"
	}
	switch js[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// setTypeMeta sets apiVersion and kind on a JSON object.
func setTypeMeta(js []byte, apiVersion, kind string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("list item is not an object: %w", err)
	}
	m["apiVersion"], m["kind"] = apiVersion, kind
	return json.Marshal(m)
}

// nameSuffix returns " <namespace>/<name>" (or " <name>") of a JSON object
// for notes, "" when it has no name.
func nameSuffix(js []byte) string {
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if json.Unmarshal(js, &m) != nil || m.Metadata.Name == "" {
		return ""
	}
	if m.Metadata.Namespace != "" {
		return " " + m.Metadata.Namespace + "/" + m.Metadata.Name
	}
	return " " + m.Metadata.Name
}

// strictMessage turns a strict decoding error into `unknown field "spec.x"`
// lines joined by "; ".
func strictMessage(err error) string {
	var se interface{ Errors() []error }
	if errors.As(err, &se) {
		var parts []string
		for _, e := range se.Errors() {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// goFieldError and goValueError match the Go type names the JSON decoder
// puts in its errors: "cannot unmarshal string into Go struct field
// DeploymentSpec.spec.replicas of type int32", "cannot unmarshal array into
// Go value of type check.listHeader".
var (
	goFieldError = regexp.MustCompile(`cannot unmarshal (\w+) into Go struct field (?:[\w\[\]*]+\.)?(\S+) of type (\S+)`)
	goValueError = regexp.MustCompile(`cannot unmarshal (\w+) into Go value of type (\S+)`)
)

// decodeMessage turns a decoding error into words without Go types:
// "spec.replicas: a string where a number is expected".
func decodeMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if m := goFieldError.FindStringSubmatchIndex(msg); m != nil {
		got, fieldName, want := msg[m[2]:m[3]], msg[m[4]:m[5]], msg[m[6]:m[7]]
		msg = msg[:m[0]] + fieldName + ": " + article(got) + " where " + jsonTypeOf(want) + " is expected" + msg[m[1]:]
	}
	if m := goValueError.FindStringSubmatchIndex(msg); m != nil {
		got, want := msg[m[2]:m[3]], msg[m[4]:m[5]]
		msg = msg[:m[0]] + article(got) + " where " + jsonTypeOf(want) + " is expected" + msg[m[1]:]
	}
	return msg
}

// article is "a string", "an array", "an object".
func article(jsonType string) string {
	switch jsonType {
	case "array":
		return "a list"
	case "object":
		return "an object (mapping)"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "a " + jsonType
}

// jsonTypeOf names the JSON value a Go type takes.
func jsonTypeOf(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "an object (mapping)"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasSuffix(t, "Quantity"), strings.HasSuffix(t, "IntOrString"):
		return "a number or a string"
	case strings.HasSuffix(t, "Time"):
		return "a time (RFC 3339)"
	}
	return "an object (mapping)"
}
