package provisioner

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

func (p *Provisioner) buildPV(opts controller.ProvisionOptions, vol *cinder.Volume, exp *cinder.Export, connector cinder.Connector, source corev1.PersistentVolumeSource) (*corev1.PersistentVolume, error) {
	conn, err := json.Marshal(connectorRecord{Initiator: connector.Initiator, Host: connector.Host, IP: connector.IP, WWPNs: connector.WWPNs, WWNNs: connector.WWNNs})
	if err != nil {
		return nil, fmt.Errorf("record connector: %w", err)
	}
	reclaim := reclaimPolicy(opts.StorageClass)
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: opts.PVName,
			Annotations: map[string]string{
				contract.AnnVolumeID:            vol.ID,
				contract.AnnExportMethod:        string(exp.Method),
				contract.AnnExportID:            exp.ID,
				contract.AnnConnector:           string(conn),
				contract.AnnProvisionerIdentity: p.name,
				contract.AnnReclaimPolicy:       string(reclaim),
			},
		},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   opts.PVC.Spec.AccessModes,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(int64(vol.SizeGiB)<<30, resource.BinarySI)},
			MountOptions:                  opts.StorageClass.MountOptions,
			VolumeMode:                    opts.PVC.Spec.VolumeMode,
			PersistentVolumeSource:        source,
		},
	}, nil
}

// reclaimPolicy is the class's reclaim policy; Delete when it names none,
// as for the API server's default.
func reclaimPolicy(class *storagev1.StorageClass) corev1.PersistentVolumeReclaimPolicy {
	if class != nil && class.ReclaimPolicy != nil {
		return *class.ReclaimPolicy
	}
	return corev1.PersistentVolumeReclaimDelete
}

// connectorRecord is the connector as recorded on the PV (no credentials).
type connectorRecord struct {
	Initiator string   `json:"initiator,omitempty"`
	Host      string   `json:"host,omitempty"`
	IP        string   `json:"ip,omitempty"`
	WWPNs     []string `json:"wwpns,omitempty"`
	WWNNs     []string `json:"wwnns,omitempty"`
}
