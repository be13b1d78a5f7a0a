#!/usr/bin/env python3
"""A NumPy/SciPy prototype of the `sobol` sampler's design (docs/model.md section 6), outside the
engine: the variance of the standard goal's success estimate (examples/accumulation-30y.json:
360 months, contributions growing 3% a year, a real target) at 16 replicates x 1,024 points of
SciPy's scrambled Sobol' with this Brownian bridge, and without it, against plain Monte Carlo at
the same 16,384 paths, over 60 seeds each, in one run. A planning figure for issue 15, not an
engine measurement.

    python3 benches/sobol_prototype.py
"""
import math, numpy as np
from scipy.stats import qmc, norm
T=360
s2=math.log1p(0.15**2/1.07**2); m=(math.log1p(0.07)-s2/2)/12; s=math.sqrt(s2/12)
target=1e6*1.025**30
c=1000*1.03**(np.arange(T)//12)
def success(z):  # z: (n, T) month normals
    W=np.full(z.shape[0],50000.0)
    g=np.exp(m+s*z)
    for t in range(T):
        W=(W+c[t])*g[:,t]
    return (W>=target).mean()
def bridge_matrix(T):
    # columns: month increments from bridge coordinates
    time=lambda k:k+1.0
    filled=[False]*T; filled[T-1]=True
    fills=[(T-1,0,T-1,0,0,math.sqrt(T))]
    j=0
    for _ in range(1,T):
        while filled[j]: j+=1
        k=j
        while not filled[k]: k+=1
        l=j+((k-1-j)>>1); filled[l]=True
        st=0.0 if j==0 else time(j-1); tl,tk=time(l),time(k)
        fills.append((l,j,k,(tk-tl)/(tk-st),(tl-st)/(tk-st),math.sqrt((tl-st)*(tk-tl)/(tk-st))))
        j=k+1
        if j>=T: j=0
    return fills
fills=bridge_matrix(T)
def bridged(zp):
    n=zp.shape[0]; W=np.zeros((n,T))
    l,j,k,a,b,sd=fills[0]; W[:,T-1]=sd*zp[:,0]
    for i in range(1,T):
        l,j,k,a,b,sd=fills[i]
        left=W[:,j-1] if j>0 else 0.0
        W[:,l]=a*left+b*W[:,k]+sd*zp[:,i]
    out=np.diff(W,axis=1,prepend=0.0)
    return out
R,N=16,1024
seeds=60
est_mc=[];est_q=[];est_qnb=[]
for sd in range(seeds):
    rng=np.random.default_rng(sd)
    est_mc.append(success(rng.standard_normal((R*N,T))))
    reps=[];repsnb=[]
    for r in range(R):
        u=qmc.Sobol(d=T,scramble=True,seed=sd*1000+r).random(N)
        z=norm.ppf(u)
        reps.append(success(bridged(z)))
        repsnb.append(success(z))
    est_q.append(np.mean(reps)); est_qnb.append(np.mean(repsnb))
v_mc=np.var(est_mc,ddof=1); v_q=np.var(est_q,ddof=1); v_nb=np.var(est_qnb,ddof=1)
print("p", np.mean(est_mc), np.mean(est_q), np.mean(est_qnb))
print("var mc", v_mc, "sobol+bridge", v_q, "VRF", v_mc/v_q, "sobol no bridge VRF", v_mc/v_nb)
