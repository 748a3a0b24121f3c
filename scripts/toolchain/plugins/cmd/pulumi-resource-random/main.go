// Command pulumi-resource-random serves RandomPassword, RandomString and RandomBytes of the random
// package for the end-to-end tests.
//
// The upstream provider (github.com/pulumi/pulumi-random/provider/v4) is not served by the Go
// module proxy, so the e2e toolchain builds this one. It follows the upstream resource contract
// that the pulumi_random Python SDK expects: the same input names and defaults, every input forces
// a replacement, the value is generated once at create time from crypto/rand and kept in state, and
// RandomPassword also returns a bcrypt hash. The SDK marks `result`, `bcryptHash`, `base64` and `hex`
// secret, so the engine encrypts them in state.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	passwordType = "random:index/randomPassword:RandomPassword"
	stringType   = "random:index/randomString:RandomString"
	bytesType    = "random:index/randomBytes:RandomBytes"
	// The engine's wire value for "not known until apply".
	unknown        = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
	defaultSpecial = "!@#$%&*()-_=+[]{}<>:?"
)

var version = "0.0.0-dev"

// Inputs that default to true and minimums that default to zero, as in the upstream schema.
var (
	boolDefaults = []string{"lower", "upper", "numeric", "number", "special"}
	minimums     = []string{"minLower", "minUpper", "minNumeric", "minSpecial"}
	outputKeys   = map[string]bool{"result": true, "bcryptHash": true, "base64": true, "hex": true}
)

func main() {
	err := provider.Main("random", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &randomProvider{}, nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

type randomProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
}

func (p *randomProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *randomProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"random","version":"` + version + `"}`}, nil
}

func (p *randomProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *randomProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *randomProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{SupportsPreview: true}, nil
}

func (p *randomProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func checkType(urnType string) error {
	if urnType != passwordType && urnType != stringType && urnType != bytesType {
		return fmt.Errorf("unknown resource type %q (this provider serves %s, %s and %s)",
			urnType, passwordType, stringType, bytesType)
	}
	return nil
}

// Check fills the defaults and rejects lengths that cannot hold the requested minimums.
func (p *randomProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetType()); err != nil {
		return nil, err
	}
	news := req.GetNews().AsMap()
	if req.GetType() == bytesType {
		return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: validateLength(news)}, nil
	}
	for _, k := range boolDefaults {
		if _, ok := news[k]; !ok {
			news[k] = true
		}
	}
	for _, k := range minimums {
		if _, ok := news[k]; !ok {
			news[k] = float64(0)
		}
	}
	inputs, err := structpb.NewStruct(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: validate(news)}, nil
}

func validateLength(in map[string]any) []*pulumirpc.CheckFailure {
	length, ok := in["length"].(float64)
	if !ok {
		if in["length"] == unknown {
			return nil
		}
		return []*pulumirpc.CheckFailure{{Property: "length", Reason: "length is required and must be a number"}}
	}
	if length < 1 {
		return []*pulumirpc.CheckFailure{{Property: "length", Reason: "length must be at least 1"}}
	}
	return nil
}

func validate(in map[string]any) []*pulumirpc.CheckFailure {
	if failures := validateLength(in); failures != nil || in["length"] == unknown {
		return failures
	}
	length := in["length"].(float64)
	sum := 0.0
	for _, k := range minimums {
		if v, isNumber := in[k].(float64); isNumber {
			sum += v
		}
	}
	if sum > length {
		return []*pulumirpc.CheckFailure{{
			Property: "length",
			Reason:   fmt.Sprintf("length (%v) is smaller than the sum of the minimums (%v)", length, sum),
		}}
	}
	return nil
}

// Diff replaces on any input change: a new length or a new keeper means a new value.
func (p *randomProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds := req.GetOldInputs().AsMap()
	if len(olds) == 0 {
		olds = req.GetOlds().AsMap()
	}
	news := req.GetNews().AsMap()
	keys := map[string]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}
	var changed []string
	for k := range keys {
		if !outputKeys[k] && !reflect.DeepEqual(olds[k], news[k]) {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, Replaces: changed, Diffs: changed,
	}, nil
}

func (p *randomProvider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(urnType(req.GetUrn())); err != nil {
		return nil, err
	}
	props := req.GetProperties().AsMap()
	if req.GetPreview() {
		for _, k := range outputsOf(urnType(req.GetUrn())) {
			props[k] = unknown
		}
		out, err := structpb.NewStruct(props)
		return &pulumirpc.CreateResponse{Id: "", Properties: out}, err
	}
	if urnType(req.GetUrn()) == bytesType {
		return createBytes(props)
	}
	result, err := generate(props)
	if err != nil {
		return nil, err
	}
	props["result"] = result
	id := result
	if urnType(req.GetUrn()) == passwordType {
		hash, err := bcrypt.GenerateFromPassword([]byte(result), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		props["bcryptHash"] = string(hash)
		id = "none"
	}
	out, err := structpb.NewStruct(props)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: out}, nil
}

func outputsOf(typ string) []string {
	switch typ {
	case passwordType:
		return []string{"result", "bcryptHash"}
	case bytesType:
		return []string{"base64", "hex"}
	default:
		return []string{"result"}
	}
}

func createBytes(props map[string]any) (*pulumirpc.CreateResponse, error) {
	raw := make([]byte, int(props["length"].(float64)))
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	props["base64"] = base64.StdEncoding.EncodeToString(raw)
	props["hex"] = hex.EncodeToString(raw)
	out, err := structpb.NewStruct(props)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: props["base64"].(string), Properties: out}, nil
}

// Read returns the stored state: a random value has nothing outside the state to refresh from.
func (p *randomProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *randomProvider) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func urnType(urn string) string {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return ""
	}
	typ := parts[len(parts)-2]
	return typ[strings.LastIndex(typ, "$")+1:]
}

// generate draws the minimum of each requested class first, fills the rest from every enabled
// class, then shuffles so the classes are not in fixed positions.
func generate(in map[string]any) (string, error) {
	special := defaultSpecial
	if s, ok := in["overrideSpecial"].(string); ok && s != "" {
		special = s
	}
	classes := []struct{ enabled, minimum, chars string }{
		{"lower", "minLower", "abcdefghijklmnopqrstuvwxyz"},
		{"upper", "minUpper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
		{"numeric", "minNumeric", "0123456789"},
		{"special", "minSpecial", special},
	}
	length := int(in["length"].(float64))
	var out []byte
	all := ""
	for _, c := range classes {
		if on, _ := in[c.enabled].(bool); !on {
			continue
		}
		all += c.chars
		n, _ := in[c.minimum].(float64)
		for range int(n) {
			b, err := pick(c.chars)
			if err != nil {
				return "", err
			}
			out = append(out, b)
		}
	}
	if all == "" {
		return "", fmt.Errorf("no character class is enabled (lower, upper, numeric, special)")
	}
	for len(out) < length {
		b, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, b)
	}
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}

func pick(chars string) (byte, error) {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
	if err != nil {
		return 0, err
	}
	return chars[i.Int64()], nil
}
