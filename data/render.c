/* First-person voxel ray caster for worldmodel (loaded by data/render.py through ctypes).
 *
 * One ray per pixel walks the voxel grid cell by cell (Amanatides & Woo, "A Fast Voxel
 * Traversal Algorithm", 1987) until it hits an opaque block, leaves the top of the
 * world, or passes the view distance. The world wraps in x and z. Rays above the
 * terrain skip whole 8x8 column tiles using a per-tile height bound (tile_top).
 * A hit face gets its texture (mip level by distance) and a fixed shade per face
 * direction; water is see-through, tinted more the deeper the ray goes; fog blends to
 * the sky colour (a gradient with a cloud layer) towards the view distance. The
 * crosshair and the first-person arm are drawn over the picture.
 *
 * Determinism: only + - * / and floorf/sqrtf (exactly rounded in IEEE 754) are used;
 * every sin/cos is computed by the caller and passed in. Compiled with -O2
 * -ffp-contract=off and no -ffast-math, the same inputs give the same bytes on any
 * x86-64 or arm64 machine. Single-threaded on purpose: callers parallelise over
 * worlds, not pixels.
 *
 * Layouts: blocks uint8 [x][y][z] (size, height, size); atlas uint8: five mip levels
 * concatenated, level k [block][face: top, side, bottom][16 >> k][16 >> k][3]; out uint8
 * [row][col][3], row 0 at top.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define TEX 16
#define BEDROCK 16 /* Block.BEDROCK; data/render.py checks they agree */
#define WATER_REACH 6.0f /* blocks a ray travels under water before the water counts as opaque */

/* cam: eye[3], forward[3], right[3], up[3], tan(fov_y / 2), view distance */
enum { CAM_EYE = 0, CAM_FWD = 3, CAM_RIGHT = 6, CAM_UP = 9, CAM_TAN = 12, CAM_DIST = 13, CAM_LEN = 14 };

/* hand: rotation[9] (columns: arm local axes in camera space), fist[3], focal (pixels at z = 1),
 * half width, length; camera space is x right, y up, z forward. */
enum { HAND_R = 0, HAND_P = 9, HAND_F = 12, HAND_W = 13, HAND_L = 14, HAND_LEN = 15 };

enum { FLAG_HAND = 1, FLAG_CROSSHAIR = 2 };

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline int wrap(int v, int n) {
    int m = v % n;
    return m < 0 ? m + n : m;
}

/* Sky gradient: pale at the horizon, deeper blue overhead. */
static inline void sky_colour(float dy, float *c) {
    float t = clampf(dy * 1.6f, 0.0f, 1.0f);
    c[0] = 168.0f + (110.0f - 168.0f) * t;
    c[1] = 204.0f + (154.0f - 204.0f) * t;
    c[2] = 255.0f + (250.0f - 255.0f) * t;
}

/* Clouds: a flat layer of white cells CLOUD_ABOVE blocks over the top of the world,
 * on a cloud_cells x cloud_cells map that spans the world (so it wraps with it). */
#define CLOUD_ABOVE 24.0f
#define CLOUD_FADE 420.0f /* distance at which clouds have faded into the sky */

static inline void add_clouds(const uint8_t *clouds, int cells, int size, int height, const float *e, const float *d,
                              float *c) {
    if (d[1] <= 0.0f || cells <= 0) return;
    float t = ((float)height + CLOUD_ABOVE - e[1]) / d[1];
    if (t <= 0.0f || t >= CLOUD_FADE) return;
    float px = e[0] + d[0] * t, pz = e[2] + d[2] * t;
    float fs = (float)size;
    px -= floorf(px / fs) * fs;
    pz -= floorf(pz / fs) * fs;
    int cx = (int)(px * (float)cells / fs), cz = (int)(pz * (float)cells / fs);
    cx = cx >= cells ? cells - 1 : cx;
    cz = cz >= cells ? cells - 1 : cz;
    if (!clouds[cx * cells + cz]) return;
    float a = 0.85f * (1.0f - t / CLOUD_FADE);
    for (int k = 0; k < 3; k++) c[k] = c[k] * (1.0f - a) + 250.0f * a;
}

/* Texture mip levels, concatenated: level k is [block][face][16 >> k][16 >> k][3]. */
#define MIP_LEVELS 5

/* Texel of `block` on `face` at (u, v) in [0, 1] from mip level `level`; v = 0 is the top row. */
static inline const uint8_t *texel(const uint8_t *atlas, const size_t *mip_offset, int block, int face, int level,
                                   float u, float v) {
    int side = TEX >> level;
    int col = (int)(u * (float)side), row = (int)(v * (float)side);
    col = col < 0 ? 0 : (col > side - 1 ? side - 1 : col);
    row = row < 0 ? 0 : (row > side - 1 ? side - 1 : row);
    return atlas + mip_offset[level] + ((((size_t)block * 3 + face) * side + row) * side + col) * 3;
}

/* The mip level for a face seen `t` blocks away when one pixel spans `pixel_angle` radians:
 * the level at which one texel is about one pixel (16 texels per block at level 0). */
static inline int mip_level(float t, float pixel_angle) {
    float texels = t * pixel_angle * (float)TEX;
    int level = 0;
    while (texels >= 2.0f && level < MIP_LEVELS - 1) {
        texels *= 0.5f;
        level++;
    }
    return level;
}

/* Colour of the face of cell (ix, iy, iz) that the ray hit at distance t through `axis`
 * (0: x face, 1: y face, 2: z face; -1: the ray starts inside the block). */
static void shade_hit(const uint8_t *atlas, const size_t *mip_offset, float pixel_angle, int block, int axis,
                      int step_y, float t, const float *e, const float *d, int ix, int iy, int iz, float *c) {
    float px = e[0] + d[0] * t, py = e[1] + d[1] * t, pz = e[2] + d[2] * t;
    float fx = px - (float)ix, fy = py - (float)iy, fz = pz - (float)iz;
    int face;
    float u, v, shade;
    if (axis == 1) {
        face = step_y < 0 ? 0 : 2; /* moving down hits a top face */
        u = fx;
        v = fz;
        shade = step_y < 0 ? 1.0f : 0.5f;
    } else if (axis == 0) {
        face = 1;
        u = d[0] > 0 ? fz : 1.0f - fz;
        v = 1.0f - fy;
        shade = 0.62f;
    } else {
        face = 1;
        u = d[2] > 0 ? 1.0f - fx : fx;
        v = 1.0f - fy;
        shade = 0.8f;
    }
    const uint8_t *tx = texel(atlas, mip_offset, block, face, mip_level(t, pixel_angle), u, v);
    c[0] = tx[0] * shade;
    c[1] = tx[1] * shade;
    c[2] = tx[2] * shade;
}

/* Fog amount at distance t: none until half the view distance, then a smoothstep to full. */
static inline float fog_amount(float t, float dist) {
    float f = clampf((t - 0.5f * dist) / (0.5f * dist), 0.0f, 1.0f);
    return f * f * (3.0f - 2.0f * f);
}

/* Trace one ray; writes its RGB (0..255 floats) to c. Returns the distance along the ray to the surface it
 * shows (the water's surface for water), or -1 where it shows the sky. */
static float trace(const uint8_t *blocks, int size, int height, const int32_t *tile_top, int tile_shift,
                  int world_top, const uint8_t *atlas, const size_t *mip_offset, float pixel_angle, int water,
                  const uint8_t *clouds, int cloud_cells, const float *e, const int *eye_cell, const float *d,
                  float dist, float *c) {
    const float BIG = 1e30f;
    const int tile = 1 << tile_shift, ntiles = size >> tile_shift;
    int ix = eye_cell[0], iy = eye_cell[1], iz = eye_cell[2], wx = eye_cell[3], wz = eye_cell[4];
    int sx = d[0] > 0 ? 1 : -1, sy = d[1] > 0 ? 1 : -1, sz = d[2] > 0 ? 1 : -1;
    /* Inverse direction: one division per axis per ray, multiplications afterwards. */
    float inx = d[0] != 0 ? 1.0f / d[0] : BIG, iny = d[1] != 0 ? 1.0f / d[1] : BIG, inz = d[2] != 0 ? 1.0f / d[2] : BIG;
    float tdx = fabsf(inx), tdy = fabsf(iny), tdz = fabsf(inz);
    float tmx = d[0] != 0 ? ((float)(ix + (sx > 0)) - e[0]) * inx : BIG;
    float tmy = d[1] != 0 ? ((float)(iy + (sy > 0)) - e[1]) * iny : BIG;
    float tmz = d[2] != 0 ? ((float)(iz + (sz > 0)) - e[2]) * inz : BIG;
    float t = 0.0f;
    int axis = -1, last_tile = -1;
    int in_water = 0; /* the ray has entered water: remember where, and the surface colour */
    float t_water = 0.0f, water_c[3] = {0, 0, 0};
    float hit_c[3];
    int hit = 0;
    float reach = dist; /* how far this ray can meet a block: an upward ray stops above everything */
    if (d[1] >= 0 && e[1] >= (float)world_top) {
        reach = 0.0f;
    } else if (d[1] > 0) {
        float t_top = ((float)world_top - e[1]) * iny;
        reach = t_top < reach ? t_top : reach;
    }

    for (;;) {
        if (iy >= height) {
            if (d[1] >= 0) break; /* left through the top of the world: sky */
        } else if (iy < 0) {
            shade_hit(atlas, mip_offset, pixel_angle, BEDROCK, axis, sy, t, e, d, ix, iy, iz, hit_c);
            hit = 1;
            break;
        } else {
            int b = blocks[((size_t)wx * height + iy) * size + wz];
            if (b == water) {
                if (!in_water) {
                    in_water = 1;
                    t_water = t;
                    /* An eye under water sees the water's top face colour around it. */
                    int face_axis = axis < 0 ? 1 : axis, face_step = axis < 0 ? -1 : sy;
                    shade_hit(atlas, mip_offset, pixel_angle, water, face_axis, face_step, t, e, d, ix, iy, iz,
                              water_c);
                }
            } else if (b != 0) {
                shade_hit(atlas, mip_offset, pixel_angle, b, axis, sy, t, e, d, ix, iy, iz, hit_c);
                hit = 1;
                break;
            }
        }
        /* Skip the rest of this column tile when the ray stays above everything in it. */
        int tx = wx >> tile_shift, tz = wz >> tile_shift, tile_id = tx * ntiles + tz;
        if (tile_id != last_tile && !in_water) {
            last_tile = tile_id;
            float top = (float)tile_top[tile_id];
            if (e[1] + d[1] * t >= top) {
                int bx0 = ix - (wx & (tile - 1)), bz0 = iz - (wz & (tile - 1));
                float ex_x = d[0] != 0 ? ((float)(sx > 0 ? bx0 + tile : bx0) - e[0]) * inx : BIG;
                float ex_z = d[2] != 0 ? ((float)(sz > 0 ? bz0 + tile : bz0) - e[2]) * inz : BIG;
                float t_exit = ex_x < ex_z ? ex_x : ex_z;
                if (d[1] >= 0 || e[1] + d[1] * t_exit >= top) {
                    if (t_exit > reach) break;
                    t = t_exit;
                    if (ex_x < ex_z) {
                        axis = 0;
                        ix = sx > 0 ? bx0 + tile : bx0 - 1;
                        iz = (int)floorf(e[2] + d[2] * t);
                        iz = iz < bz0 ? bz0 : (iz > bz0 + tile - 1 ? bz0 + tile - 1 : iz);
                    } else {
                        axis = 2;
                        iz = sz > 0 ? bz0 + tile : bz0 - 1;
                        ix = (int)floorf(e[0] + d[0] * t);
                        ix = ix < bx0 ? bx0 : (ix > bx0 + tile - 1 ? bx0 + tile - 1 : ix);
                    }
                    iy = (int)floorf(e[1] + d[1] * t);
                    wx = wrap(ix, size);
                    wz = wrap(iz, size);
                    tmx = d[0] != 0 ? ((float)(ix + (sx > 0)) - e[0]) * inx : BIG;
                    tmy = d[1] != 0 ? ((float)(iy + (sy > 0)) - e[1]) * iny : BIG;
                    tmz = d[2] != 0 ? ((float)(iz + (sz > 0)) - e[2]) * inz : BIG;
                    continue;
                }
            }
        }
        /* Step into the next cell along the axis whose boundary is nearest. */
        if (tmx < tmy && tmx < tmz) {
            t = tmx;
            tmx += tdx;
            ix += sx;
            wx += sx;
            if (wx == size) wx = 0;
            if (wx < 0) wx = size - 1;
            axis = 0;
        } else if (tmy < tmz) {
            t = tmy;
            tmy += tdy;
            iy += sy;
            axis = 1;
        } else {
            t = tmz;
            tmz += tdz;
            iz += sz;
            wz += sz;
            if (wz == size) wz = 0;
            if (wz < 0) wz = size - 1;
            axis = 2;
        }
        if (t > reach) break;
        if (in_water && t - t_water > WATER_REACH) break;
    }

    float sky[3];
    sky_colour(d[1], sky);
    add_clouds(clouds, cloud_cells, size, height, e, d, sky);
    float base[3];
    float t_seen = t;
    if (hit) {
        base[0] = hit_c[0], base[1] = hit_c[1], base[2] = hit_c[2];
    } else if (in_water) {
        base[0] = 18.0f, base[1] = 36.0f, base[2] = 100.0f; /* deep water */
    } else {
        c[0] = sky[0], c[1] = sky[1], c[2] = sky[2];
        return -1.0f;
    }
    if (in_water) {
        /* See-through water: more opaque the deeper the ray went under the surface. */
        float depth = t - t_water;
        float a = 0.5f + 0.45f * clampf(depth / 6.0f, 0.0f, 1.0f);
        for (int k = 0; k < 3; k++) base[k] = water_c[k] * a + base[k] * (1.0f - a);
        t_seen = t_water;
    }
    float f = fog_amount(t_seen, dist);
    for (int k = 0; k < 3; k++) c[k] = base[k] * (1.0f - f) + sky[k] * f;
    return t_seen;
}

/* ---------------------------------------------------------------------------- the hand */

static const int BOX_FACES[6][5] = {
    /* four corner indices (corner bit 0: +x, bit 1: +y, bit 2: +a) and the normal axis * sign code */
    {0, 2, 6, 4, -1}, /* -x */
    {1, 5, 7, 3, 1},  /* +x */
    {0, 4, 5, 1, -2}, /* -y */
    {2, 3, 7, 6, 2},  /* +y */
    {0, 1, 3, 2, -3}, /* -a (fist end) */
    {4, 6, 7, 5, 3},  /* +a (shoulder end) */
};

/* Draw a box of the arm, from a0 to a1 along its length, in colour col. The arm moves with the camera, so where
 * it is drawn the inverse depth (when asked for) is 0, like the sky's: a step of the camera does not move it. */
static void draw_box(uint8_t *out, float *inv_depth, int width, int height, const float *hand, float a0, float a1,
                     const float *col) {
    const float *R = hand + HAND_R, *P = hand + HAND_P;
    float f = hand[HAND_F], w = hand[HAND_W];
    float cam[8][3], sx[8], sy[8];
    for (int i = 0; i < 8; i++) {
        float lx = (i & 1) ? w : -w, ly = (i & 2) ? w : -w, la = (i & 4) ? a1 : a0;
        for (int k = 0; k < 3; k++) cam[i][k] = P[k] + R[k * 3 + 0] * lx + R[k * 3 + 1] * ly + R[k * 3 + 2] * la;
        float z = cam[i][2] < 0.05f ? 0.05f : cam[i][2];
        sx[i] = 0.5f * width + f * cam[i][0] / z;
        sy[i] = 0.5f * height - f * cam[i][1] / z;
    }
    const float light[3] = {-0.25f, 0.85f, -0.46f};
    for (int fi = 0; fi < 6; fi++) {
        const int *q = BOX_FACES[fi];
        int ax = (q[4] < 0 ? -q[4] : q[4]) - 1;
        float sign = q[4] < 0 ? -1.0f : 1.0f;
        float n[3] = {R[0 * 3 + ax] * sign, R[1 * 3 + ax] * sign, R[2 * 3 + ax] * sign};
        float centre[3] = {0, 0, 0};
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) centre[k] += 0.25f * cam[q[j]][k];
        if (n[0] * centre[0] + n[1] * centre[1] + n[2] * centre[2] >= 0) continue; /* faces away */
        float lit = n[0] * light[0] + n[1] * light[1] + n[2] * light[2];
        float shade = 0.6f + 0.4f * clampf(lit, 0.0f, 1.0f);
        uint8_t rgb[3];
        for (int k = 0; k < 3; k++) rgb[k] = (uint8_t)clampf(col[k] * shade + 0.5f, 0.0f, 255.0f);
        float minx = sx[q[0]], maxx = minx, miny = sy[q[0]], maxy = miny;
        for (int j = 1; j < 4; j++) {
            minx = sx[q[j]] < minx ? sx[q[j]] : minx;
            maxx = sx[q[j]] > maxx ? sx[q[j]] : maxx;
            miny = sy[q[j]] < miny ? sy[q[j]] : miny;
            maxy = sy[q[j]] > maxy ? sy[q[j]] : maxy;
        }
        int x0 = (int)clampf(floorf(minx), 0, width - 1), x1 = (int)clampf(floorf(maxx) + 1, 0, width);
        int y0 = (int)clampf(floorf(miny), 0, height - 1), y1 = (int)clampf(floorf(maxy) + 1, 0, height);
        /* Winding of the projected quad, so the inside test works for either orientation. */
        float area = 0;
        for (int j = 0; j < 4; j++) {
            int a = q[j], b = q[(j + 1) & 3];
            area += sx[a] * sy[b] - sx[b] * sy[a];
        }
        float orient = area >= 0 ? 1.0f : -1.0f;
        for (int y = y0; y < y1; y++) {
            float py = y + 0.5f;
            for (int x = x0; x < x1; x++) {
                float px = x + 0.5f;
                int inside = 1;
                for (int j = 0; j < 4 && inside; j++) {
                    int a = q[j], b = q[(j + 1) & 3];
                    float edge = (sx[b] - sx[a]) * (py - sy[a]) - (sy[b] - sy[a]) * (px - sx[a]);
                    if (edge * orient < 0) inside = 0;
                }
                if (inside) {
                    uint8_t *o = out + ((size_t)y * width + x) * 3;
                    o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
                    if (inv_depth) inv_depth[(size_t)y * width + x] = 0.0f;
                }
            }
        }
    }
}

static void draw_hand(uint8_t *out, float *inv_depth, int width, int height, const float *hand) {
    const float skin[3] = {214.0f, 160.0f, 122.0f}, sleeve[3] = {30.0f, 150.0f, 160.0f};
    float len = hand[HAND_L];
    /* Far part first (the fist end), then the sleeve nearer the camera over it. */
    draw_box(out, inv_depth, width, height, hand, 0.0f, 0.62f * len, skin);
    draw_box(out, inv_depth, width, height, hand, 0.62f * len, len, sleeve);
}

/* A plus in the centre: each pixel inverted, pushed to white where inversion would not show. */
static void draw_crosshair(uint8_t *out, int width, int height) {
    int arm = height / 32 > 2 ? height / 32 : 2;
    int thick = height / 128 > 1 ? height / 128 : 1;
    int cx = width / 2, cy = height / 2;
    for (int y = cy - arm; y < cy + arm + (thick - 1) + 1; y++) {
        for (int x = cx - arm; x < cx + arm + (thick - 1) + 1; x++) {
            int on_h = (y >= cy && y < cy + thick), on_v = (x >= cx && x < cx + thick);
            if (!(on_h || on_v) || x < 0 || y < 0 || x >= width || y >= height) continue;
            uint8_t *o = out + ((size_t)y * width + x) * 3;
            int lum = (o[0] * 3 + o[1] * 6 + o[2]) / 10;
            for (int k = 0; k < 3; k++) o[k] = lum > 96 && lum < 160 ? 255 : (uint8_t)(255 - o[k]);
        }
    }
}

/* ---------------------------------------------------------------------------- entry points */

int wm_render(const uint8_t *blocks, int size, int height, const int32_t *tile_top, int tile_shift,
              const uint8_t *atlas, int num_blocks, int water, const uint8_t *clouds, int cloud_cells, const float *cam,
              const float *hand, int flags, int width, int rows, uint8_t *out, float *inv_depth) {
    if (size <= 0 || height <= 0 || width <= 0 || rows <= 0) return -1;
    const float *e = cam + CAM_EYE, *fw = cam + CAM_FWD, *rt = cam + CAM_RIGHT, *up = cam + CAM_UP;
    float tan_y = cam[CAM_TAN], tan_x = tan_y * (float)width / (float)rows, dist = cam[CAM_DIST];
    int world_top = 0; /* above this y there is nothing but sky */
    for (int i = 0; i < (size >> tile_shift) * (size >> tile_shift); i++)
        world_top = tile_top[i] > world_top ? tile_top[i] : world_top;
    float c[3], d[3];
    size_t mip_offset[MIP_LEVELS];
    for (int k = 0, off = 0; k < MIP_LEVELS; k++) {
        mip_offset[k] = (size_t)off;
        off += num_blocks * 3 * (TEX >> k) * (TEX >> k) * 3;
    }
    float pixel_angle = 2.0f * tan_y / (float)rows; /* radians one pixel spans, near the centre */
    int ex = (int)floorf(e[0]), ey = (int)floorf(e[1]), ez = (int)floorf(e[2]);
    const int eye_cell[5] = {ex, ey, ez, wrap(ex, size), wrap(ez, size)}; /* the same for every ray */
    for (int y = 0; y < rows; y++) {
        float v = (1.0f - 2.0f * ((float)y + 0.5f) / (float)rows) * tan_y;
        for (int x = 0; x < width; x++) {
            float u = (2.0f * ((float)x + 0.5f) / (float)width - 1.0f) * tan_x;
            for (int k = 0; k < 3; k++) d[k] = fw[k] + rt[k] * u + up[k] * v;
            float inv = 1.0f / sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            d[0] *= inv, d[1] *= inv, d[2] *= inv;
            float t = trace(blocks, size, height, tile_top, tile_shift, world_top, atlas, mip_offset, pixel_angle, water,
                            clouds, cloud_cells, e, eye_cell, d, dist, c);
            if (inv_depth) { /* 1 / depth along the view axis; 0 for the sky (infinitely far) */
                float z = t * (d[0] * fw[0] + d[1] * fw[1] + d[2] * fw[2]);
                inv_depth[(size_t)y * width + x] = t > 0.0f && z > 1e-4f ? 1.0f / z : 0.0f;
            }
            uint8_t *o = out + ((size_t)y * width + x) * 3;
            for (int k = 0; k < 3; k++) o[k] = (uint8_t)clampf(c[k] + 0.5f, 0.0f, 255.0f);
        }
    }
    if (flags & FLAG_HAND) draw_hand(out, inv_depth, width, rows, hand);
    if (flags & FLAG_CROSSHAIR) draw_crosshair(out, width, rows);
    return 0;
}

/* The first solid (not air, not water) block along a ray within `reach`.
 * ray: eye[3], unit direction[3]. out: hit cell xyz (wrapped), then the cell the ray came from.
 * Returns 1 on a hit, 0 on none. */
int wm_raycast(const uint8_t *blocks, int size, int height, int water, const float *ray, float reach, int32_t *out) {
    const float BIG = 1e30f;
    const float *e = ray, *d = ray + 3;
    int ix = (int)floorf(e[0]), iy = (int)floorf(e[1]), iz = (int)floorf(e[2]);
    int px = ix, py = iy, pz = iz;
    int sx = d[0] > 0 ? 1 : -1, sy = d[1] > 0 ? 1 : -1, sz = d[2] > 0 ? 1 : -1;
    float tdx = d[0] != 0 ? fabsf(1.0f / d[0]) : BIG;
    float tdy = d[1] != 0 ? fabsf(1.0f / d[1]) : BIG;
    float tdz = d[2] != 0 ? fabsf(1.0f / d[2]) : BIG;
    float tmx = d[0] != 0 ? ((float)(ix + (sx > 0)) - e[0]) / d[0] : BIG;
    float tmy = d[1] != 0 ? ((float)(iy + (sy > 0)) - e[1]) / d[1] : BIG;
    float tmz = d[2] != 0 ? ((float)(iz + (sz > 0)) - e[2]) / d[2] : BIG;
    float t = 0.0f;
    while (t <= reach) {
        int b;
        if (iy < 0) b = BEDROCK;
        else if (iy >= height) b = 0;
        else b = blocks[((size_t)wrap(ix, size) * height + iy) * size + wrap(iz, size)];
        if (b != 0 && b != water) {
            out[0] = wrap(ix, size), out[1] = iy, out[2] = wrap(iz, size);
            out[3] = wrap(px, size), out[4] = py, out[5] = wrap(pz, size);
            return 1;
        }
        px = ix, py = iy, pz = iz;
        if (tmx < tmy && tmx < tmz) {
            t = tmx, tmx += tdx, ix += sx;
        } else if (tmy < tmz) {
            t = tmy, tmy += tdy, iy += sy;
        } else {
            t = tmz, tmz += tdz, iz += sz;
        }
    }
    return 0;
}
