"""One way to draw a grasp: the palette, the gripper glyph and its three renderers.

Palette: mode number m (true modes of the simulator and proposal clusters alike are numbered
from 1 wherever they are shown) has the colour ``MODE_COLORS[(m - 1) % 10]``; 0 means "no
feasible grasp" (white). :func:`mode_color` (uint8 RGB) and :func:`mode_rgb` (floats in
[0, 1], for matplotlib and RViz markers) read it; :func:`cluster_numbers` turns the cluster
ids of a proposal (from 1, 0 = unknown) into these numbers.

Glyph (:func:`grasp_glyphs`): the open gripper seen from above, two jaws ``aperture`` px
apart (their inner faces), each ``claw_width`` px long across the closing direction, and
the closing line between the jaw centres; sizes from sim/gripper.yaml unless given.

Renderers: :func:`draw_grasps` (OpenCV raster, for the annotated image topic),
:func:`plot_grasps` (matplotlib, for the PNG figures) with :func:`legend_handles`,
:func:`add_mm_axes` and :func:`plot_workspace`; RViz markers take :func:`mode_rgb`.
"""

import os
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from fga_ros.file_writes import save_figure
from fga_ros.sim.gripper import load_gripper_config
from fga_ros.sim.render import load_camera, render
from fga_ros.sim.workspace import IMAGE_SIZE, WORKSPACE_HI, WORKSPACE_LO

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fga_ros.sim.ground_truth import GroundTruth
    from fga_ros.sim.scene import Scene

MODE_COLORS = np.array([
    [228, 26, 28], [55, 126, 184], [77, 175, 74], [152, 78, 163], [255, 127, 0],
    [166, 86, 40], [247, 129, 191], [23, 190, 207], [188, 189, 34], [99, 99, 99],
], dtype=np.uint8)
"""RGB colour of mode m (1-based) is MODE_COLORS[(m - 1) % 10]; mode 0 (none) is white."""

NO_MODE_COLOR = (255, 255, 255)
"""RGB of mode 0: no feasible grasp / infeasible."""

UNKNOWN_COLOR = (153, 153, 153)
"""RGB of a negative mode number: mode unknown."""

OUTLINE_COLOR = (0, 0, 0)
"""Every glyph is drawn over a black outline, so it shows on any background."""

IMAGE_EXTENT = (-0.5, IMAGE_SIZE - 0.5, IMAGE_SIZE - 0.5, -0.5)
"""matplotlib ``imshow`` extent of a camera image: pixel centres at integer coordinates."""


def mode_color(mode: int) -> tuple[int, int, int]:
    """RGB uint8 colour of a mode number (1-based; 0 = no feasible grasp, white;
    negative = unknown, grey)."""
    mode = int(mode)
    if mode < 0:
        return UNKNOWN_COLOR
    if mode == 0:
        return NO_MODE_COLOR
    red, green, blue = MODE_COLORS[(mode - 1) % 10]
    return int(red), int(green), int(blue)


def mode_rgb(modes: ArrayLike) -> np.ndarray:
    """RGB floats in [0, 1] of mode numbers (n,) -> (n, 3) (same rules as :func:`mode_color`;
    what matplotlib and RViz markers take)."""
    modes = np.asarray(modes, dtype=np.int64).reshape(-1)
    return np.array([mode_color(m) for m in modes], dtype=np.float64).reshape(-1, 3) / 255.0


def cluster_numbers(cluster_ids: ArrayLike) -> np.ndarray:
    """Palette numbers of a proposal's cluster ids (n,), numbered from 1 like the simulator's
    modes: the id itself; 0 (unknown) becomes -1 (grey), not mode 0's white."""
    ids = np.asarray(cluster_ids, dtype=np.int64).reshape(-1)
    return np.where(ids >= 1, ids, -1)


def gripper_size(aperture: float | None = None,
                 claw_width: float | None = None) -> tuple[float, float]:
    """(aperture, claw_width) in px: the given values, else those of sim/gripper.yaml."""
    config = load_gripper_config()
    return (float(config.aperture if aperture is None else aperture),
            float(config.claw_width if claw_width is None else claw_width))


def grasp_glyphs(actions: ArrayLike, distortion: str = 'none', aperture: float | None = None,
                 claw_width: float | None = None) -> np.ndarray:
    """Glyph segments of grasps (B, 3) = (x px, y px, alpha rad): (B, 3, 2, 2) image points
    (x, y); [:, 0] and [:, 1] are the jaws (``aperture`` apart, ``claw_width`` long), [:, 2]
    the closing line between the jaw centres. With a distortion the points are mapped into
    the distorted camera image."""
    acts = np.asarray(actions, dtype=np.float64)
    if acts.ndim != 2 or acts.shape[1] != 3:
        raise ValueError(f'grasps must be an (n, 3) array of x, y, alpha; got {acts.shape}')
    aperture, claw_width = gripper_size(aperture, claw_width)
    centre = acts[:, :2]
    closing = np.stack([np.cos(acts[:, 2]), np.sin(acts[:, 2])], axis=1)
    across = np.stack([-closing[:, 1], closing[:, 0]], axis=1)
    left, right = centre - aperture / 2.0 * closing, centre + aperture / 2.0 * closing
    half = claw_width / 2.0 * across
    glyphs: np.ndarray = np.stack([np.stack([left - half, left + half], axis=1),
                                   np.stack([right - half, right + half], axis=1),
                                   np.stack([left, right], axis=1)], axis=1)
    if distortion != 'none' and len(glyphs):
        hom = load_camera().homography(distortion)
        glyphs = cv2.perspectiveTransform(glyphs.reshape(1, -1, 2), hom).reshape(glyphs.shape)
    return glyphs


def _colours_255(colours: ArrayLike, count: int) -> list[tuple[int, ...]]:
    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    if len(colours) != count:
        raise ValueError(f'got {count} grasps but {len(colours)} colours')
    return [tuple(int(v) for v in np.round(255 * np.clip(c, 0.0, 1.0))) for c in colours]


def draw_grasps(image: np.ndarray, actions: ArrayLike, colours: ArrayLike, scale: int = 1,
                aperture: float | None = None, claw_width: float | None = None,
                distortion: str = 'none') -> np.ndarray:
    """OpenCV raster: a copy of an RGB image (H, W, 3) uint8, upscaled by the integer
    ``scale`` (nearest), with the glyph of each grasp drawn in its colour (over a black
    outline when scale > 1). colours: (n, 3) RGB floats in [0, 1] (e.g. :func:`mode_rgb`).
    Later grasps are drawn on top. Returns (H*scale, W*scale, 3) uint8."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
    glyphs = grasp_glyphs(actions, distortion, aperture, claw_width)
    colours = _colours_255(colours, len(glyphs))
    out = np.ascontiguousarray(
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        if scale != 1 else image.copy())
    shift = 4  # sub-pixel bits of cv2.line
    points = np.round(((glyphs + 0.5) * scale - 0.5) * (1 << shift)).astype(np.int64)
    colour_width = max(1, scale // 2)
    # a black outline where there is room for it (upscaled); at scale 1 it would hide the image
    strokes = (((colour_width + 2, OUTLINE_COLOR, cv2.LINE_AA),) if scale > 1 else ())
    for glyph, colour in zip(points, colours):
        # the colour is drawn without anti-aliasing, so its pixels are exactly the palette's
        for width, paint, kind in strokes + ((colour_width, colour, cv2.LINE_8),):
            for a, b in glyph:
                cv2.line(out, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), paint, width,
                         kind, shift)
    return out


# -- matplotlib -----------------------------------------------------------------------------

_JAW_LW, _LINE_LW, _OUTLINE_EXTRA = 2.2, 1.0, 1.4
_CROSS: dict[str, Any] = {'marker': 'X', 'ms': 9, 'mfc': 'k', 'mec': 'w', 'mew': 0.8}


def plot_grasps(ax: 'Axes', actions: ArrayLike, colours: ArrayLike,
                feasible: ArrayLike | None = None, distortion: str = 'none',
                aperture: float | None = None, claw_width: float | None = None) -> None:
    """Draw grasp glyphs on a matplotlib axes in image pixels, each in its colour (n, 3)
    RGB floats over a black outline; where ``feasible`` (n,) bool is given, each infeasible
    grasp gets a black cross on its centre (:func:`legend_handles` explains both)."""
    glyphs = grasp_glyphs(actions, distortion, aperture, claw_width)
    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    if len(colours) != len(glyphs):
        raise ValueError(f'got {len(glyphs)} grasps but {len(colours)} colours')
    for glyph, colour in zip(glyphs, colours):
        for k, seg in enumerate(glyph):
            width = _JAW_LW if k < 2 else _LINE_LW
            ax.plot(seg[:, 0], seg[:, 1], color='k', lw=width + _OUTLINE_EXTRA,
                    solid_capstyle='butt', gid='grasp-outline')
            ax.plot(seg[:, 0], seg[:, 1], color=colour, lw=width, solid_capstyle='butt',
                    gid='grasp')
    if feasible is not None:
        bad = ~np.asarray(feasible, dtype=bool).reshape(-1)
        if bad.shape != (len(glyphs),):
            raise ValueError(f'feasible must hold one flag per grasp ({len(glyphs)})')
        centres = glyphs[bad, 2].mean(axis=1)
        ax.plot(centres[:, 0], centres[:, 1], ls='none', gid='infeasible', zorder=4, **_CROSS)



def _glyph_marker():
    """The glyph as a matplotlib marker path (closing direction horizontal)."""
    from matplotlib.path import Path
    aperture, claw_width = gripper_size()
    h, w = 1.0, claw_width / aperture
    return Path([(-h, -w), (-h, w), (h, -w), (h, w), (-h, 0.0), (h, 0.0)],
                [Path.MOVETO, Path.LINETO] * 3)


def legend_handles(modes: dict[int, str] | None = None, glyph: bool = True,
                   infeasible: bool = False, workspace: bool = False,
                   no_mode: bool = False) -> list:
    """matplotlib legend handles: the gripper glyph (with its size in px and mm), a colour
    patch per item of ``modes`` ({mode number: label}), the white of 'no feasible grasp',
    the cross of an infeasible grasp, the workspace outline."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles: list[Artist] = []
    if glyph:
        aperture, claw_width = gripper_size()
        mm = 1e3 * load_camera().pixel_size_m
        handles.append(Line2D([], [], ls='none', marker=_glyph_marker(), ms=16, mew=1.6,
                              color='k', label=f'gripper: jaws {aperture:g} px '
                              f'({aperture * mm:g} mm) apart, {claw_width:g} px long'))
    handles += [Patch(fc=mode_rgb([m])[0], ec='k', lw=0.5, label=label)
                for m, label in (modes or {}).items()]
    if no_mode:
        handles.append(Patch(fc='w', ec='k', lw=0.5, label='no feasible grasp'))
    if infeasible:
        handles.append(Line2D([], [], ls='none', label='infeasible (simulator check)',
                              **_CROSS))
    if workspace:
        handles.append(Line2D([], [], ls='--', lw=0.8, color='0.5',
                              label='workspace: allowed grasp centres'))
    return handles


def plot_workspace(ax: 'Axes', distortion: str = 'none') -> None:
    """Dashed outline of the workspace (where grasp centres may lie), in image pixels."""
    lo, hi = WORKSPACE_LO - 0.5, WORKSPACE_HI - 0.5  # pixel-cell edges
    corners = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi], [lo, lo]])
    if distortion != 'none':
        hom = load_camera().homography(distortion)
        corners = cv2.perspectiveTransform(corners[None], hom)[0]
    ax.plot(corners[:, 0], corners[:, 1], ls='--', lw=0.8, color='0.5', gid='workspace')


def add_mm_axes(ax: 'Axes', x: bool = True, y: bool = True) -> None:
    """Secondary axes in millimetres on the table (top for x, right for y) for an axes in
    image pixels; pixel size from sim/camera.yaml."""
    mm = 1e3 * load_camera().pixel_size_m
    functions = (lambda px: px * mm, lambda v: v / mm)
    if x:
        ax.secondary_xaxis('top', functions=functions).set_xlabel('x [mm]')
    if y:
        ax.secondary_yaxis('right', functions=functions).set_ylabel('y [mm]')


def show_image(ax: 'Axes', image: np.ndarray, distortion: str = 'none') -> None:
    """A camera image on an axes in pixels (mm too when undistorted: then image pixels are
    table pixels), with the workspace outline."""
    ax.imshow(image, extent=IMAGE_EXTENT, interpolation='nearest')
    plot_workspace(ax, distortion)
    ax.set_xlim(IMAGE_EXTENT[:2])
    ax.set_ylim(IMAGE_EXTENT[2:])
    ax.set_xlabel('x [px]')
    ax.set_ylabel('y [px]')
    if distortion == 'none':
        add_mm_axes(ax)


def projection_image(labels: np.ndarray, axis: int) -> np.ndarray:
    """Project mode labels (n, 78, 78) over ``axis`` and colour by mode: RGB uint8. Where
    several modes overlap, the largest (smallest id) is shown."""
    labels = np.asarray(labels)
    top = np.iinfo(labels.dtype).max
    proj = np.where(labels > 0, labels, top).min(axis=axis)
    proj[proj == top] = 0
    palette = np.array([mode_color(m) for m in range(int(proj.max()) + 1)], dtype=np.uint8)
    return palette[proj]


def show_projections(xy_ax: 'Axes', xa_ax: 'Axes', xy: np.ndarray, xa: np.ndarray,
                     **style: Any) -> None:
    """x-y and x-alpha projections (images over the workspace) on two axes, in px, mm and
    degrees."""
    lo, hi = WORKSPACE_LO, WORKSPACE_HI
    xy_ax.imshow(xy, extent=(lo, hi, hi, lo), interpolation='nearest', **style)
    xa_ax.imshow(xa, extent=(lo, hi, 180.0, 0.0), aspect='auto', interpolation='nearest',
                 **style)
    xy_ax.set_ylabel('y [px]')
    xa_ax.set_ylabel('alpha [deg]: closing direction from +x')
    for ax in (xy_ax, xa_ax):
        ax.set_xlabel('x [px]')
    add_mm_axes(xy_ax)
    add_mm_axes(xa_ax, y=False)


def sim_figure(scene: 'Scene', gt: 'GroundTruth', path: str | os.PathLike,
               num_grasps: int = 24,
               seed: int = 0) -> 'Figure':
    """Save a PNG: the camera image with ``num_grasps`` feasible grasps coloured by mode, and
    the x-y and x-alpha projections (max over the hidden dimension) of the feasible set
    coloured by mode, in the style of the paper's figures 1 and 4."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14.5, 6.0), dpi=100, layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    if gt.num_modes and num_grasps:
        actions = gt.sample_feasible(num_grasps, np.random.default_rng(seed))
        modes = gt.mode_of(actions)
    else:
        actions, modes = np.zeros((0, 3)), np.zeros(0, dtype=int)
    show_image(axes[0], render(scene), scene.distortion)
    plot_grasps(axes[0], actions, mode_rgb(modes), distortion=scene.distortion)
    camera = 'camera image' + ('' if scene.distortion == 'none'
                               else f', distortion {scene.distortion!r}')
    axes[0].set_title(f'{camera}: {len(modes)} random feasible grasps', fontsize=10)
    show_projections(axes[1], axes[2], projection_image(gt.labels, 0),
                     projection_image(gt.labels, 1))
    axes[1].set_title('feasible grasp centres (any angle)', fontsize=10)
    axes[2].set_title('feasible x and angle (any y)', fontsize=10)
    shares = {m + 1: f'mode {m + 1}: {100 * share:.0f}% of feasible grasps'
              for m, share in enumerate(gt.mode_shares)}
    handles = legend_handles(shares, workspace=True, no_mode=True)
    fig.legend(handles=handles, loc='outside lower center', ncol=4, fontsize=8,
               handlelength=3)
    fig.suptitle(f'{scene.shape} seed {scene.seed}: ground-truth feasible grasps, '
                 f'{gt.num_modes} modes, {100 * gt.feasible_fraction:.2f}% of all grasps '
                 'feasible (simulator)')
    save_figure(fig, path)  # the type follows the extension
    return fig
