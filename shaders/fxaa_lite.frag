#version 330 core
// FXAA-lite: the cheap anti-aliasing pass for software rasterisers (Mesa llvmpipe), where the full
// FXAA's four bilinear taps and direction search cost about 11 ms at 720p (both sides of every
// branch run). Five unfiltered fetches (centre and the 4-neighbour cross) find the local edge and
// its orientation, as FXAA 3.11 does, and blend the centre toward the neighbour across the edge by
// FXAA's sub-pixel factor. No search along the edge: long shallow staircases get softened steps
// instead of a full gradient. Input is the sRGB-encoded resolved image; alpha is kept.
uniform sampler2D u_image;
out vec4 f_color;

float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 hi = textureSize(u_image, 0) - 1;
    vec4 m = texelFetch(u_image, p, 0);
    vec3 n = texelFetch(u_image, min(p + ivec2(0, 1), hi), 0).rgb;
    vec3 s = texelFetch(u_image, max(p - ivec2(0, 1), ivec2(0)), 0).rgb;
    vec3 e = texelFetch(u_image, min(p + ivec2(1, 0), hi), 0).rgb;
    vec3 w = texelFetch(u_image, max(p - ivec2(1, 0), ivec2(0)), 0).rgb;
    float lm = luma(m.rgb), ln = luma(n), ls = luma(s), le = luma(e), lw = luma(w);
    float lmin = min(lm, min(min(ln, ls), min(le, lw)));
    float lmax = max(lm, max(max(ln, ls), max(le, lw)));
    float range = lmax - lmin;
    // sub-pixel factor: how far the centre stands out from its neighbours (0 on flat areas)
    float sub = clamp(abs(0.25 * (ln + ls + le + lw) - lm) / max(range, 1e-4), 0.0, 1.0);
    sub = smoothstep(0.0, 1.0, sub);
    float amount = sub * sub * 0.75 * step(max(0.0312, lmax * 0.125), range);
    // horizontal edge when the luma changes more vertically than horizontally
    bool horizontal = abs(ln + ls - 2.0 * lm) >= abs(le + lw - 2.0 * lm);
    vec3 a = horizontal ? n : e;
    vec3 b = horizontal ? s : w;
    float la = horizontal ? ln : le;
    float lb = horizontal ? ls : lw;
    vec3 across = abs(la - lm) >= abs(lb - lm) ? a : b;
    f_color = vec4(mix(m.rgb, across, amount), m.a);
}
