"""Pictures of scenes, grasps and ground-truth feasible sets (opencv images, matplotlib PNGs).

Grasp glyph: two claw bars (claw_width long, at +-(aperture/2 + claw_thickness/2) from the
centre along the closing direction) joined by a line, as in the paper's figures 1a and 4.
"""

import cv2
import numpy as np

from fga_ros.file_writes import save_figure
from fga_ros.sim.gripper import default_gripper
from fga_ros.sim.render import load_camera, render
from fga_ros.sim.workspace import WORKSPACE_HI, WORKSPACE_LO, validate_actions

MODE_COLORS = np.array([
    [228, 26, 28], [55, 126, 184], [77, 175, 74], [152, 78, 163], [255, 127, 0],
    [166, 86, 40], [247, 129, 191], [23, 190, 207], [188, 189, 34], [99, 99, 99],
], dtype=np.uint8)
"""RGB colour of mode m (1-based) is MODE_COLORS[(m - 1) % 10]; infeasible is drawn white."""


def mode_color(mode) -> tuple:
    """RGB uint8 colour of a mode id (0 = infeasible -> white)."""
    return (255, 255, 255) if mode <= 0 else tuple(int(v) for v in MODE_COLORS[(mode - 1) % 10])


def grasp_glyphs(actions, distortion='none') -> np.ndarray:
    """Glyph polylines of actions (B, 3): (B, 3, 2, 2) float image points (x, y):
    [:, 0] and [:, 1] are the claw bars, [:, 2] the line between the claw centres.
    With a distortion the points are mapped into the distorted camera image."""
    acts = validate_actions(actions)
    cfg = default_gripper().config
    half_open = cfg.aperture / 2.0 + cfg.claw_thickness / 2.0
    half_claw = cfg.claw_width / 2.0
    c = acts[:, :2]
    u = np.stack([np.cos(acts[:, 2]), np.sin(acts[:, 2])], axis=1)
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    left, right = c - half_open * u, c + half_open * u
    glyphs = np.stack([
        np.stack([left - half_claw * v, left + half_claw * v], axis=1),
        np.stack([right - half_claw * v, right + half_claw * v], axis=1),
        np.stack([left, right], axis=1)], axis=1)
    if distortion != 'none':
        hom = load_camera().homography(distortion)
        flat = cv2.perspectiveTransform(glyphs.reshape(1, -1, 2), hom)
        glyphs = flat.reshape(glyphs.shape)
    return glyphs


def draw_grasps(image, actions, modes=None, scale=4, distortion='none') -> np.ndarray:
    """Upscale an RGB image (H, W, 3) by ``scale`` (nearest) and draw grasp glyphs on it.

    modes: optional (B,) int mode ids colouring the glyphs (0 = infeasible, white).
    Returns a new (H*scale, W*scale, 3) uint8 RGB image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    glyphs = grasp_glyphs(actions, distortion)
    modes = np.ones(len(glyphs), dtype=int) if modes is None else np.asarray(modes)
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    pts = np.round((glyphs + 0.5) * scale - 0.5).astype(np.int32)
    for glyph, mode in zip(pts, modes):
        color = mode_color(int(mode))
        for k, (a, b) in enumerate(glyph):
            cv2.line(big, tuple(map(int, a)), tuple(map(int, b)), (0, 0, 0), 5 if k < 2 else 3,
                     cv2.LINE_AA)
            cv2.line(big, tuple(map(int, a)), tuple(map(int, b)), color, 3 if k < 2 else 1,
                     cv2.LINE_AA)
    return big


def projection_image(labels, axis) -> np.ndarray:
    """Project mode labels (n, 78, 78) over ``axis`` and colour by mode: RGB uint8. Where
    several modes overlap, the largest (smallest id) is shown."""
    labels = np.asarray(labels)
    top = np.iinfo(labels.dtype).max
    proj = np.where(labels > 0, labels, top).min(axis=axis)
    proj[proj == top] = 0
    palette = np.vstack([[[255, 255, 255]], MODE_COLORS[(np.arange(proj.max()) % 10)]])
    return palette[proj].astype(np.uint8)


def sim_figure(scene, gt, path, num_grasps=24, seed=0):
    """Save a PNG: the camera image with ``num_grasps`` feasible grasps coloured by mode, and
    the x-y and x-alpha projections (max over the hidden dimension) of the feasible set
    coloured by mode, in the style of the paper's figures 1 and 4."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    fig = Figure(figsize=(13.5, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    lo, hi = WORKSPACE_LO, WORKSPACE_HI
    image = render(scene)
    if gt.num_modes and num_grasps:
        actions = gt.sample_feasible(num_grasps, np.random.default_rng(seed))
        glyphs = grasp_glyphs(actions, scene.distortion)
        modes = gt.mode_of(actions)
    else:
        glyphs, modes = np.zeros((0, 3, 2, 2)), np.zeros(0, dtype=int)
    ax = axes[0]
    ax.imshow(image, extent=(-0.5, 127.5, 127.5, -0.5), interpolation='nearest')
    if scene.distortion == 'none':
        ax.add_patch(Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ls='--', lw=0.8,
                               ec='0.5'))
    for glyph, mode in zip(glyphs, modes):
        color = np.array(mode_color(int(mode))) / 255.0
        for k, seg in enumerate(glyph):
            ax.plot(seg[:, 0], seg[:, 1], color='k', lw=3.5 if k < 2 else 2.0,
                    solid_capstyle='butt')
            ax.plot(seg[:, 0], seg[:, 1], color=color, lw=2.2 if k < 2 else 1.0,
                    solid_capstyle='butt')
    ax.set_xlim(-0.5, 127.5)
    ax.set_ylim(127.5, -0.5)
    ax.set_title(f'{scene.shape} seed {scene.seed} ({scene.distortion}): '
                 f'{len(modes)} feasible grasps')
    axes[1].imshow(projection_image(gt.labels, 0), extent=(lo, hi, hi, lo),
                   interpolation='nearest')
    axes[1].set_xlabel('x [px]')
    axes[1].set_ylabel('y [px]')
    axes[1].set_title('feasible set, x-y (max over alpha)')
    xa = projection_image(gt.labels, 1)  # (n, 78, 3): alpha rows, x columns
    axes[2].imshow(xa, extent=(lo, hi, 180.0, 0.0), aspect='auto', interpolation='nearest')
    axes[2].set_xlabel('x [px]')
    axes[2].set_ylabel('alpha [deg]')
    axes[2].set_title('feasible set, x-alpha (max over y)')
    handles = [Patch(color=np.array(mode_color(m + 1)) / 255.0,
                     label=f'mode {m + 1}: {100 * s:.0f}%')
               for m, s in enumerate(gt.mode_shares)]
    if handles:
        axes[2].legend(handles=handles, loc='upper right', fontsize=7, framealpha=0.8)
    fig.suptitle(f'feasible fraction {100 * gt.feasible_fraction:.2f}% of the action space, '
                 f'{gt.num_modes} modes')
    fig.tight_layout()
    save_figure(fig, path)
