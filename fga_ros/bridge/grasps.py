"""ProposeGrasps responses (``fga_ros/Grasp`` field dicts) from a core ``Proposal``."""

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from fga_ros.bridge.camera_geometry import CameraMapping
from fga_ros.bridge.geometry import pose_dict

if TYPE_CHECKING:
    from fga_ros.core.inference.proposer import Proposal

PROPOSAL_FIELDS = ('actions', 'scores', 'log_density', 'cluster_ids', 'ranks')


def proposal_arrays(proposal: 'Proposal') -> dict[str, np.ndarray]:
    """The per-grasp arrays of ``proposal``, checked for matching lengths and sorted by rank.

    ``proposal`` has numpy fields actions (n, 3) px/rad, scores (n,), log_density (n,),
    cluster_ids (n,), ranks (n,).
    """
    arrays = {name: np.asarray(getattr(proposal, name)) for name in PROPOSAL_FIELDS}
    actions = arrays['actions'].reshape(-1, 3) if arrays['actions'].size else np.zeros((0, 3))
    arrays['actions'] = actions
    n = len(actions)
    for name in PROPOSAL_FIELDS[1:]:
        arrays[name] = arrays[name].reshape(-1)
        if len(arrays[name]) != n:
            raise ValueError(f'proposal.{name} has {len(arrays[name])} entries, expected {n}')
    order = np.argsort(arrays['ranks'], kind='stable')
    return {name: value[order] for name, value in arrays.items()}


def grasp_fields(arrays: dict[str, np.ndarray], camera: CameraMapping, header: dict[str, Any],
                 opening_px: float) -> list[dict[str, Any]]:
    """``fga_ros/Grasp`` dicts, one per proposal row of :func:`proposal_arrays`: poses in the
    camera frame (``header.frame_id``) and in the table frame (``camera.table_frame``)."""
    positions, quaternions = camera.action_poses(arrays['actions'])
    table_positions, table_quaternions = camera.table_action_poses(arrays['actions'])
    table_header = {'stamp': header['stamp'], 'frame_id': camera.table_frame}
    opening = float(opening_px * camera.pixel_size)
    grasps = []
    for i, (x, y, angle) in enumerate(arrays['actions']):
        grasps.append({
            'pose': {'header': header, 'pose': pose_dict(positions[i], quaternions[i])},
            'table_pose': {'header': table_header,
                           'pose': pose_dict(table_positions[i], table_quaternions[i])},
            'x': float(x),
            'y': float(y),
            'angle': float(angle),
            'opening_width': opening,
            'score': float(arrays['scores'][i]),
            'log_density': float(arrays['log_density'][i]),
            'cluster_id': int(arrays['cluster_ids'][i]),
            'rank': int(arrays['ranks'][i]),
        })
    return grasps


def proposal_response_fields(proposal: 'Proposal', camera: CameraMapping,
                             header: dict[str, Any], opening_px: float) -> dict[str, Any]:
    """ProposeGrasps response fields for a successful proposal."""
    arrays = proposal_arrays(proposal)
    return {
        'success': True,
        'message': '',
        'header': header,
        'grasps': grasp_fields(arrays, camera, header, opening_px),
        'best_score': float(getattr(proposal, 'best_score', float('nan'))),
        'num_sampled': int(proposal.num_sampled),
        'num_rejected': int(proposal.num_rejected),
        'inference_time': float(proposal.inference_ms) / 1000.0,
    }


def failure_response_fields(message: str,
                            proposal: Optional['Proposal'] = None) -> dict[str, Any]:
    """ProposeGrasps response fields for a refused or failed request, or an abstaining
    ``proposal`` (its best score and sample counts are reported)."""
    fields: dict[str, Any] = {'success': False, 'message': message}
    if proposal is not None:
        fields.update({'best_score': float(proposal.best_score),
                       'num_sampled': int(proposal.num_sampled),
                       'num_rejected': int(proposal.num_rejected),
                       'inference_time': float(proposal.inference_ms) / 1000.0})
    return fields
