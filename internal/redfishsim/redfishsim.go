// Package redfishsim is a stateful Redfish BMC for tests: DMTF-shaped
// resources (ServiceRoot, Systems with Reset and Boot override,
// EthernetInterfaces, SimpleStorage, SessionService, AccountService) whose
// state changes as a real BMC's would — Reset changes PowerState, which
// DMTF's mockup server does not do — plus faults a real BMC shows now and
// then: slowness, 5xx answers, wrong credentials (and, served with
// httptest.NewTLSServer, an untrusted certificate). It is checked against
// real clients nobody here wrote (python3-sushy, redfishtool) in its tests,
// so it cannot drift into sharing ironpool's own misreadings unnoticed.
package redfishsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// System is one simulated ComputerSystem.
type System struct {
	ID         string
	UUID       string
	HostName   string
	PowerState string // On, Off
	CPUs       int
	Arch       string // Redfish ProcessorArchitecture: x86, ARM, Power
	MemoryGiB  float64
	DiskBytes  int64
	MACs       []string
	// BootTarget and BootEnabled are Boot.BootSourceOverrideTarget
	// (None, Pxe, Hdd, BiosSetup) and Boot.BootSourceOverrideEnabled
	// (Disabled, Once, Continuous).
	BootTarget  string
	BootEnabled string
	// Resets counts Reset actions, so a test can tell "asked" from "was".
	Resets int
}

// Account is one AccountService account.
type Account struct {
	ID       string
	UserName string
	Password string
	RoleID   string
	Enabled  bool
}

// Sim is the simulated BMC; it is an http.Handler.
type Sim struct {
	mu       sync.Mutex
	systems  []*System
	accounts []*Account
	sessions map[string]string // token → session id
	nextID   int

	delay    time.Duration
	failWith int
	requests int
}

// New returns a simulator whose administrator account is user/password,
// serving systems (a copy is kept).
func New(user, password string, systems ...System) *Sim {
	s := &Sim{sessions: map[string]string{}, nextID: 2}
	s.accounts = []*Account{{ID: "1", UserName: user, Password: password, RoleID: "Administrator", Enabled: true}}
	for _, sys := range systems {
		c := sys
		c.MACs = slices.Clone(sys.MACs)
		if c.PowerState == "" {
			c.PowerState = "Off"
		}
		if c.BootTarget == "" {
			c.BootTarget, c.BootEnabled = "None", "Disabled"
		}
		s.systems = append(s.systems, &c)
	}
	return s
}

// System returns a snapshot of one system.
func (s *Sim) System(id string) System {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sys := range s.systems {
		if sys.ID == id {
			c := *sys
			return c
		}
	}
	return System{}
}

// Accounts returns a snapshot of every account.
func (s *Sim) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Account, len(s.accounts))
	for i, a := range s.accounts {
		out[i] = *a
	}
	return out
}

// SetDelay makes every answer wait d first (a slow BMC).
func (s *Sim) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// SetFailure makes every answer the HTTP status code (e.g. 503); 0 heals.
func (s *Sim) SetFailure(code int) { s.mu.Lock(); s.failWith = code; s.mu.Unlock() }

// Requests counts the requests served.
func (s *Sim) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

func (s *Sim) newID() string { s.nextID++; return fmt.Sprint(s.nextID) }

type obj = map[string]any

func link(p string) obj { return obj{"@odata.id": p} }

const root = "/redfish/v1"

// ServeHTTP answers one Redfish request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	delay, fail := s.delay, s.failWith
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != 0 {
		writeError(w, fail, "Base.1.0.InternalError", "simulated failure")
		return
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p == root || p == "/redfish" || p == root+"/odata" || p == root+"/$metadata" {
		s.serviceRoot(w, r, p)
		return
	}
	if p == root+"/SessionService/Sessions" && r.Method == http.MethodPost {
		s.login(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="redfishsim"`)
		writeError(w, http.StatusUnauthorized, "Base.1.0.NoValidSession", "authentication required")
		return
	}
	switch {
	case p == root+"/Systems":
		members := []obj{}
		for _, sys := range s.systems {
			members = append(members, link(root+"/Systems/"+sys.ID))
		}
		writeJSON(w, 200, collection(p, "#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", members))
	case strings.HasPrefix(p, root+"/Systems/"):
		s.systemRoutes(w, r, strings.Split(strings.TrimPrefix(p, root+"/Systems/"), "/"))
	case p == root+"/SessionService":
		writeJSON(w, 200, obj{"@odata.id": p, "@odata.type": "#SessionService.v1_1_8.SessionService", "Id": "SessionService",
			"Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 1800, "Sessions": link(p + "/Sessions")})
	case p == root+"/SessionService/Sessions":
		members := []obj{}
		for _, id := range s.sessions {
			members = append(members, link(p+"/"+id))
		}
		writeJSON(w, 200, collection(p, "#SessionCollection.SessionCollection", "Sessions", members))
	case strings.HasPrefix(p, root+"/SessionService/Sessions/"):
		id := strings.TrimPrefix(p, root+"/SessionService/Sessions/")
		for tok, sid := range s.sessions {
			if sid != id {
				continue
			}
			if r.Method == http.MethodDelete {
				delete(s.sessions, tok)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			writeJSON(w, 200, obj{"@odata.id": p, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "Session " + id})
			return
		}
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no such session")
	case p == root+"/AccountService":
		writeJSON(w, 200, obj{"@odata.id": p, "@odata.type": "#AccountService.v1_10_0.AccountService", "Id": "AccountService",
			"Name": "Account Service", "ServiceEnabled": true, "MinPasswordLength": 8, "MaxPasswordLength": 20,
			"Accounts": link(p + "/Accounts"), "Roles": link(p + "/Roles")})
	case p == root+"/AccountService/Roles":
		members := []obj{}
		for _, role := range []string{"Administrator", "Operator", "ReadOnly"} {
			members = append(members, link(p+"/"+role))
		}
		writeJSON(w, 200, collection(p, "#RoleCollection.RoleCollection", "Roles", members))
	case strings.HasPrefix(p, root+"/AccountService/Roles/"):
		role := strings.TrimPrefix(p, root+"/AccountService/Roles/")
		if role != "Administrator" && role != "Operator" && role != "ReadOnly" {
			writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no such role")
			return
		}
		writeJSON(w, 200, obj{"@odata.id": p, "@odata.type": "#Role.v1_3_1.Role", "Id": role, "Name": role, "RoleId": role, "IsPredefined": true})
	case p == root+"/AccountService/Accounts":
		s.accountsCollection(w, r, p)
	case strings.HasPrefix(p, root+"/AccountService/Accounts/"):
		s.account(w, r, p, strings.TrimPrefix(p, root+"/AccountService/Accounts/"))
	default:
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no resource at "+p)
	}
}

func collection(p, typ, name string, members []obj) obj {
	return obj{"@odata.id": p, "@odata.type": typ, "Name": name, "Members": members, "Members@odata.count": len(members)}
}

func (s *Sim) serviceRoot(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/redfish" {
		writeJSON(w, 200, obj{"v1": root + "/"})
		return
	}
	if p != root {
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "not served")
		return
	}
	writeJSON(w, 200, obj{
		"@odata.id": root, "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot", "Id": "RootService",
		"Name": "ironpool Redfish simulator", "RedfishVersion": "1.11.0", "UUID": "92384634-2938-2342-8820-489239905423",
		"Product":        "redfishsim",
		"Systems":        link(root + "/Systems"),
		"SessionService": link(root + "/SessionService"),
		"AccountService": link(root + "/AccountService"),
		"Links":          obj{"Sessions": link(root + "/SessionService/Sessions")},
	})
}

// authorized accepts Basic credentials of an enabled account or a session
// token. Called with s.mu held.
func (s *Sim) authorized(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		_, ok := s.sessions[tok]
		return ok
	}
	u, p, ok := r.BasicAuth()
	return ok && s.checkPassword(u, p)
}

func (s *Sim) checkPassword(user, pass string) bool {
	for _, a := range s.accounts {
		if a.Enabled && a.UserName == user && subtle.ConstantTimeCompare([]byte(a.Password), []byte(pass)) == 1 {
			return true
		}
	}
	return false
}

func (s *Sim) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ UserName, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		writeError(w, 400, "Base.1.0.MalformedJSON", "malformed body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.checkPassword(in.UserName, in.Password) {
		writeError(w, 401, "Base.1.0.NoValidSession", "invalid credentials")
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	id := s.newID()
	s.sessions[tok] = id
	loc := root + "/SessionService/Sessions/" + id
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", loc)
	writeJSON(w, 201, obj{"@odata.id": loc, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "Session " + id, "UserName": in.UserName})
}

var (
	resetTypes  = []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PowerCycle", "ForceOn", "Nmi"}
	bootTargets = []string{"None", "Pxe", "Hdd", "BiosSetup", "Cd", "Usb"}
	bootEnabled = []string{"Disabled", "Once", "Continuous"}
)

// systemRoutes serves /Systems/{id}[/...]. Called with s.mu held.
func (s *Sim) systemRoutes(w http.ResponseWriter, r *http.Request, parts []string) {
	var sys *System
	for _, x := range s.systems {
		if x.ID == parts[0] {
			sys = x
		}
	}
	if sys == nil {
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no such system")
		return
	}
	base := root + "/Systems/" + sys.ID
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		writeJSON(w, 200, s.systemJSON(sys))
	case len(parts) == 1 && r.Method == http.MethodPatch:
		var in struct {
			Boot *struct {
				BootSourceOverrideTarget  *string
				BootSourceOverrideEnabled *string
				BootSourceOverrideMode    *string
			}
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.Boot == nil {
			writeError(w, 400, "Base.1.0.MalformedJSON", "want {\"Boot\": {...}}")
			return
		}
		if t := in.Boot.BootSourceOverrideTarget; t != nil {
			if !slices.Contains(bootTargets, *t) {
				writeError(w, 400, "Base.1.0.PropertyValueNotInList", "BootSourceOverrideTarget "+*t)
				return
			}
			sys.BootTarget = *t
		}
		if e := in.Boot.BootSourceOverrideEnabled; e != nil {
			if !slices.Contains(bootEnabled, *e) {
				writeError(w, 400, "Base.1.0.PropertyValueNotInList", "BootSourceOverrideEnabled "+*e)
				return
			}
			sys.BootEnabled = *e
		}
		writeJSON(w, 200, s.systemJSON(sys))
	case len(parts) == 3 && parts[1] == "Actions" && parts[2] == "ComputerSystem.Reset" && r.Method == http.MethodPost:
		var in struct{ ResetType string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || !slices.Contains(resetTypes, in.ResetType) {
			writeError(w, 400, "Base.1.0.ActionParameterNotSupported", "ResetType")
			return
		}
		sys.Resets++
		switch in.ResetType {
		case "On", "ForceOn", "GracefulRestart", "ForceRestart", "PowerCycle":
			sys.PowerState = "On"
		case "ForceOff", "GracefulShutdown":
			sys.PowerState = "Off"
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && parts[1] == "EthernetInterfaces":
		members := []obj{}
		for i := range sys.MACs {
			members = append(members, link(fmt.Sprintf("%s/EthernetInterfaces/%d", base, i+1)))
		}
		writeJSON(w, 200, collection(base+"/EthernetInterfaces", "#EthernetInterfaceCollection.EthernetInterfaceCollection", "Ethernet Interfaces", members))
	case len(parts) == 3 && parts[1] == "EthernetInterfaces":
		var i int
		if _, err := fmt.Sscan(parts[2], &i); err != nil || i < 1 || i > len(sys.MACs) {
			writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no such interface")
			return
		}
		writeJSON(w, 200, obj{"@odata.id": fmt.Sprintf("%s/EthernetInterfaces/%d", base, i), "@odata.type": "#EthernetInterface.v1_6_0.EthernetInterface",
			"Id": parts[2], "Name": "NIC " + parts[2], "MACAddress": sys.MACs[i-1], "PermanentMACAddress": sys.MACs[i-1]})
	case len(parts) == 2 && parts[1] == "Processors":
		writeJSON(w, 200, collection(base+"/Processors", "#ProcessorCollection.ProcessorCollection", "Processors", []obj{link(base + "/Processors/CPU1")}))
	case len(parts) == 3 && parts[1] == "Processors" && parts[2] == "CPU1":
		isa := map[string]string{"x86": "x86-64", "ARM": "ARM-A64", "Power": "PowerISA"}[sys.Arch]
		writeJSON(w, 200, obj{"@odata.id": base + "/Processors/CPU1", "@odata.type": "#Processor.v1_10_0.Processor", "Id": "CPU1", "Name": "Processor",
			"ProcessorType": "CPU", "ProcessorArchitecture": sys.Arch, "InstructionSet": isa, "TotalCores": sys.CPUs, "TotalThreads": sys.CPUs})
	case len(parts) == 2 && parts[1] == "SimpleStorage":
		writeJSON(w, 200, collection(base+"/SimpleStorage", "#SimpleStorageCollection.SimpleStorageCollection", "Simple Storage", []obj{link(base + "/SimpleStorage/1")}))
	case len(parts) == 3 && parts[1] == "SimpleStorage" && parts[2] == "1":
		writeJSON(w, 200, obj{"@odata.id": base + "/SimpleStorage/1", "@odata.type": "#SimpleStorage.v1_2_0.SimpleStorage", "Id": "1", "Name": "Disks",
			"Devices": []obj{{"Name": "disk0", "CapacityBytes": sys.DiskBytes, "Status": obj{"State": "Enabled"}}}})
	default:
		writeError(w, 405, "Base.1.0.OperationNotAllowed", r.Method+" "+r.URL.Path)
	}
}

func (s *Sim) systemJSON(sys *System) obj {
	base := root + "/Systems/" + sys.ID
	return obj{
		"@odata.id": base, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
		"Id": sys.ID, "Name": "System " + sys.ID, "UUID": sys.UUID, "HostName": sys.HostName,
		"SystemType": "Physical", "PowerState": sys.PowerState,
		"Status":           obj{"State": "Enabled", "Health": "OK"},
		"ProcessorSummary": obj{"Count": sys.CPUs, "Status": obj{"State": "Enabled"}},
		"MemorySummary":    obj{"TotalSystemMemoryGiB": sys.MemoryGiB, "Status": obj{"State": "Enabled"}},
		"Boot": obj{
			"BootSourceOverrideTarget":                         sys.BootTarget,
			"BootSourceOverrideEnabled":                        sys.BootEnabled,
			"BootSourceOverrideMode":                           "UEFI",
			"BootSourceOverrideTarget@Redfish.AllowableValues": bootTargets,
		},
		"EthernetInterfaces": link(base + "/EthernetInterfaces"),
		"SimpleStorage":      link(base + "/SimpleStorage"),
		"Actions": obj{"#ComputerSystem.Reset": obj{
			"target":                            base + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": resetTypes,
		}},
		"Processors": link(base + "/Processors"),
	}
}

// accountsCollection lists accounts or, on POST, creates one. Called with
// s.mu held.
func (s *Sim) accountsCollection(w http.ResponseWriter, r *http.Request, p string) {
	if r.Method == http.MethodPost {
		var in struct {
			UserName, Password, RoleId string
			Enabled                    *bool
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.UserName == "" || len(in.Password) < 8 {
			writeError(w, 400, "Base.1.0.PropertyMissing", "UserName and a Password of 8+ characters are required")
			return
		}
		if in.RoleId == "" {
			in.RoleId = "ReadOnly"
		}
		for _, a := range s.accounts {
			if a.UserName == in.UserName {
				writeError(w, 409, "Base.1.0.ResourceAlreadyExists", "user exists")
				return
			}
		}
		a := &Account{ID: s.newID(), UserName: in.UserName, Password: in.Password, RoleID: in.RoleId, Enabled: in.Enabled == nil || *in.Enabled}
		s.accounts = append(s.accounts, a)
		w.Header().Set("Location", p+"/"+a.ID)
		writeJSON(w, 201, accountJSON(p, a))
		return
	}
	members := []obj{}
	for _, a := range s.accounts {
		members = append(members, link(p+"/"+a.ID))
	}
	writeJSON(w, 200, collection(p, "#ManagerAccountCollection.ManagerAccountCollection", "Accounts", members))
}

func accountJSON(coll string, a *Account) obj {
	return obj{"@odata.id": coll + "/" + a.ID, "@odata.type": "#ManagerAccount.v1_7_0.ManagerAccount", "Id": a.ID, "Name": "User Account",
		"UserName": a.UserName, "RoleId": a.RoleID, "Enabled": a.Enabled, "Password": nil}
}

// account serves one account (GET, DELETE). Called with s.mu held.
func (s *Sim) account(w http.ResponseWriter, r *http.Request, p, id string) {
	for i, a := range s.accounts {
		if a.ID != id {
			continue
		}
		if r.Method == http.MethodDelete {
			if i == 0 {
				writeError(w, 409, "Base.1.0.ResourceCannotBeDeleted", "the administrator account stays")
				return
			}
			s.accounts = slices.Delete(s.accounts, i, i+1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, 200, accountJSON(root+"/AccountService/Accounts", a))
		return
	}
	writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no such account")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, id, msg string) {
	writeJSON(w, code, obj{"error": obj{"code": id, "message": msg,
		"@Message.ExtendedInfo": []obj{{"MessageId": id, "Message": msg}}}})
}

// Sessions counts the open sessions.
func (s *Sim) Sessions() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.sessions) }

// CheckLogin reports whether user/password is an enabled account.
func (s *Sim) CheckLogin(user, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkPassword(user, password)
}
