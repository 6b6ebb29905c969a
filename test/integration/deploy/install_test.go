package deploy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// installed is the base's Namespace, ServiceAccount and RBAC, applied under
// names of the test's own: the namespace becomes cinder-provisioner-<id> and
// every cluster-scoped object gets -<id>, so that the test collides neither
// with another run nor with a real installation.
type installed struct {
	ns string
	id string
}

// clusterName is the test's name of a cluster-scoped object of the base.
func (in installed) clusterName(name string) string { return name + "-" + in.id }

func (in installed) roleRef(ref rbacv1.RoleRef) rbacv1.RoleRef {
	if ref.Kind == "ClusterRole" {
		ref.Name = in.clusterName(ref.Name)
	}
	return ref
}

// subjects points the base's ServiceAccount subjects at the test namespace.
func (in installed) subjects(t *testing.T, subs []rbacv1.Subject) []rbacv1.Subject {
	t.Helper()
	out := make([]rbacv1.Subject, 0, len(subs))
	for _, sub := range subs {
		if sub.Kind != rbacv1.ServiceAccountKind || sub.Name != serviceAccountName || sub.Namespace != baseNamespace {
			t.Fatalf("unexpected subject %+v: the base binds only ServiceAccount %s/%s", sub, baseNamespace, serviceAccountName)
		}
		sub.Namespace = in.ns
		out = append(out, sub)
	}
	return out
}

// roleBinding is a RoleBinding of the base (or of the example overlay) as
// the test applies it, in namespace ns.
func (in installed) roleBinding(t *testing.T, rb *rbacv1.RoleBinding, ns string) *rbacv1.RoleBinding {
	t.Helper()
	out := rb.DeepCopy()
	out.Namespace = ns
	out.RoleRef = in.roleRef(rb.RoleRef)
	out.Subjects = in.subjects(t, rb.Subjects)
	return out
}

// install applies the base's Namespace, ServiceAccount, Roles, ClusterRoles
// and their bindings, renamed, and removes them when the test ends.
func install(t *testing.T, s *framework.Stack, m manifests) installed {
	t.Helper()
	in := installed{id: framework.UniqueName("it")}
	in.ns = baseNamespace + "-" + in.id
	ctx := context.Background()

	if len(m.namespaces) != 1 || m.namespaces[0].Name != baseNamespace {
		t.Fatalf("the base should make exactly Namespace %s, got %d namespaces", baseNamespace, len(m.namespaces))
	}
	ns := m.namespaces[0].DeepCopy()
	ns.Name = in.ns
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { deleteIgnoringNotFound(t, "Namespace "+in.ns, s.Kube.CoreV1().Namespaces().Delete, in.ns) })

	if len(m.serviceAccounts) != 1 || m.serviceAccounts[0].Name != serviceAccountName {
		t.Fatalf("the base should make exactly ServiceAccount %s, got %d", serviceAccountName, len(m.serviceAccounts))
	}
	for _, sa := range m.serviceAccounts {
		sa = sa.DeepCopy()
		in.mustBeBaseNamespace(t, "ServiceAccount", sa.Namespace)
		sa.Namespace = in.ns
		if _, err := s.Kube.CoreV1().ServiceAccounts(in.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ServiceAccount: %v", err)
		}
	}
	for _, r := range m.clusterRoles {
		r = r.DeepCopy()
		r.Name = in.clusterName(r.Name)
		if _, err := s.Kube.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRole %s: %v", r.Name, err)
		}
		t.Cleanup(func() {
			deleteIgnoringNotFound(t, "ClusterRole "+r.Name, s.Kube.RbacV1().ClusterRoles().Delete, r.Name)
		})
	}
	for _, b := range m.clusterRoleBindings {
		b = b.DeepCopy()
		b.Name = in.clusterName(b.Name)
		b.RoleRef = in.roleRef(b.RoleRef)
		b.Subjects = in.subjects(t, b.Subjects)
		if _, err := s.Kube.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRoleBinding %s: %v", b.Name, err)
		}
		t.Cleanup(func() {
			deleteIgnoringNotFound(t, "ClusterRoleBinding "+b.Name, s.Kube.RbacV1().ClusterRoleBindings().Delete, b.Name)
		})
	}
	for _, r := range m.roles {
		r = r.DeepCopy()
		in.mustBeBaseNamespace(t, "Role "+r.Name, r.Namespace)
		r.Namespace = in.ns
		if _, err := s.Kube.RbacV1().Roles(in.ns).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Role %s: %v", r.Name, err)
		}
	}
	for _, b := range m.roleBindings {
		in.mustBeBaseNamespace(t, "RoleBinding "+b.Name, b.Namespace)
		b = in.roleBinding(t, b, in.ns)
		if _, err := s.Kube.RbacV1().RoleBindings(in.ns).Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create RoleBinding %s: %v", b.Name, err)
		}
	}
	return in
}

func (in installed) mustBeBaseNamespace(t *testing.T, what, ns string) {
	t.Helper()
	if ns != baseNamespace {
		t.Fatalf("%s is in namespace %q, want the base's %s", what, ns, baseNamespace)
	}
}

func deleteIgnoringNotFound(t *testing.T, what string, del func(context.Context, string, metav1.DeleteOptions) error, name string) {
	err := del(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("cleanup: delete %s: %v", what, err)
	}
}

// serviceAccount is the provisioner's identity: a token of the installed
// ServiceAccount, as a client config and as a kubeconfig file.
type serviceAccount struct {
	config     *rest.Config
	client     kubernetes.Interface
	kubeconfig string
}

// tokenTTL is how long the minted token lives: longer than the test.
const tokenTTL = 3600

func (in installed) serviceAccount(t *testing.T, s *framework.Stack) serviceAccount {
	t.Helper()
	ttl := int64(tokenTTL)
	tr, err := s.Kube.CoreV1().ServiceAccounts(in.ns).CreateToken(context.Background(), serviceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for ServiceAccount %s/%s: %v", in.ns, serviceAccountName, err)
	}
	token := tr.Status.Token

	cfg := rest.AnonymousClientConfig(s.RESTConfig) // the CA, no admin credentials
	cfg.BearerToken = token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("ServiceAccount client: %v", err)
	}

	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{
		Server:                   s.RESTConfig.Host,
		CertificateAuthority:     s.RESTConfig.CAFile,
		CertificateAuthorityData: s.RESTConfig.CAData,
	}
	kc.AuthInfos[serviceAccountName] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["provisioner"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: serviceAccountName}
	kc.CurrentContext = "provisioner"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return serviceAccount{config: cfg, client: client, kubeconfig: path}
}

// access is one question to the authorizer.
type access struct {
	verb, group, resource, namespace string
}

func (a access) String() string {
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	res := a.resource
	if a.group != "" {
		res += "." + a.group
	}
	return a.verb + " " + res + " " + where
}

// can asks the API server whether the ServiceAccount may do a.
func (sa serviceAccount) can(ctx context.Context, a access) (bool, error) {
	resource, subresource, _ := strings.Cut(a.resource, "/") // "persistentvolumeclaims/status"
	r, err := sa.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: resource, Subresource: subresource,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}
